// ESLint for the web page's ES modules (src/groundup/web/static); `make lint` runs it.
import js from "@eslint/js";
import globals from "globals";

export default [
  js.configs.recommended,
  {
    files: ["src/groundup/web/static/**/*.js"],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: "module",
      globals: globals.browser,
    },
    rules: {
      "no-unused-vars": ["error", { args: "none" }],
      "prefer-const": "error",
      "no-var": "error",
      eqeqeq: "error",
    },
  },
];
