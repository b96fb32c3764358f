"""Figures that show whether a model reads a processing chain or a source instead of the lungs,
from a model's metrics.json (no TensorFlow).

A processing chain is how an image was exported, resized and compressed: the manifest's ``chain``
column where it has one, else the image's source. Metrics written before ``per_chain`` existed
hold per-source figures only; there each source is its chain.
"""

from __future__ import annotations

from .config import AUDIT_TARGET_DATA, MIN_SUBGROUP_SUPPORT


def per_chain(metrics: dict) -> dict:
    """Figures per processing chain ({} where the data named neither chains nor sources)."""
    return metrics.get("per_chain") or metrics.get("per_source") or {}


def chains_from(metrics: dict) -> str | None:
    """The manifest column the chains come from: "chain", "source", or None without chains."""
    return metrics.get("chains_from") or ("source" if metrics.get("per_source") else None)


def chain_recalls(metrics: dict, name: str, min_support: int = 1) -> dict[str, tuple[float, int]]:
    """{chain: (recall of class ``name``, its images)} over the chains holding at least ``min_support``
    images of it."""
    return {chain: (figures["recall"][name], figures["support"][name])
            for chain, figures in per_chain(metrics).items()
            if figures.get("support", {}).get(name, 0) >= min_support}


def single_chain_classes(metrics: dict) -> dict[str, str]:
    """{class: chain} for each class whose images all come through one chain: there the split cannot
    tell the class from the chain."""
    chains: dict[str, list[str]] = {}
    for chain, figures in per_chain(metrics).items():
        for name, support in figures.get("support", {}).items():
            if support:
                chains.setdefault(name, []).append(chain)
    return {name: found[0] for name, found in chains.items() if len(found) == 1 and len(per_chain(metrics)) > 1}


def audit_recall(metrics: dict, name: str, data: str | None = AUDIT_TARGET_DATA) -> tuple[float, int] | None:
    """(recall, images) of class ``name`` on the lung-attention audit X-rays labelled ``name``, by their
    own labels; None where the model was not audited on ``data`` (any audit data where None) or the
    audit held no such X-ray."""
    audit = metrics.get("lung_attention") or {}
    if not audit or (data is not None and audit.get("data_dir") != data):
        return None
    found = (audit.get("recall_by_label") or {}).get(name)
    return (found["recall"], found["n_images"]) if found else None


def lowest_chain_recall(metrics: dict, name: str) -> tuple[str, float, int] | None:
    """(chain, recall, images) of the chain where class ``name`` is recalled least, over chains with at
    least MIN_SUBGROUP_SUPPORT images of it."""
    recalls = chain_recalls(metrics, name, MIN_SUBGROUP_SUPPORT)
    if not recalls:
        return None
    chain = min(recalls, key=lambda c: recalls[c][0])
    return chain, *recalls[chain]
