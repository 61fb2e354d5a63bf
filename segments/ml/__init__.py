"""Clustering and propensity models (STYLE rule 14: heavy imports inside functions, artifacts
carry a format version and the hash of their training data, requests only read saved output).

Both work on plain frames so the same code runs on the project's events and on the UCI Online
Retail transactions the benchmark uses (`bench/segments.py`):
- `orders`: one row per order — customer, time, amount;
- `activity` (optional): one row per event — customer, time, name, category;
- `lines` (optional): one row per product of an order — customer, time, order, product,
  quantity, price.

Propensity labels are time-based: features are computed from what happened before a cut-off
and the label is what happens in the 30 days after it. Training stacks several cut-offs; the
held-out AUC is measured on the most recent cut-off whose 30 days are complete, with the model
trained only on earlier ones.

Modules: `features` (pure frames in, frames out), `propensity` and `clustering` (fitting),
`artifacts` (format version, data hash) and `training` (the project's data, the fit of each
kind). The runs that train them and write their scores are services
(`segments.services.model_runs`).
"""
