"""What a learner looks at: figures (matplotlib, imported lazily) and the HTML report."""
