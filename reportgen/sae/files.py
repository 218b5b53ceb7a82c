"""The files of a SAELens dictionary folder (named here without importing torch)."""

CFG = "cfg.json"
SAELENS_WEIGHTS = "sae_weights.safetensors"
DICTIONARY_FILES = (CFG, SAELENS_WEIGHTS)
