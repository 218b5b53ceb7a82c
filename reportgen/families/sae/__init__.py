"""The sparse-feature family: one dictionary fixed on the base encodes every model."""

#: Folder beside the views that holds the SAE dictionaries the audit trained.
TRAINED_SAE = "trained-sae"
