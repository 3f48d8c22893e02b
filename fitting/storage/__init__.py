"""Storage: the output contract (what nadfit may write or replace) and loaders of saved results."""
