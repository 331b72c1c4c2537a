"""What can be reported, with its routing rule, time limits and merge rule."""
