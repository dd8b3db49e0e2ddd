"""Terminal output (rich): result summaries, capacity plans, the tier catalogue and comparisons. Formatting
only: every figure is read from a result, or computed by the cost and compare layers."""
