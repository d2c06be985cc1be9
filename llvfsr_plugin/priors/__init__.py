"""Priors: `contract` (what a prior is, one table), `record` (a record's bytes), `store` (LMDB / folder
stores), `extractors` (the models that make priors from the LR face), `cli_args` (choosing them on a
command line)."""
