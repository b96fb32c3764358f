"""Finding classes, skipping corrupt files, deterministic stratified group-aware splits."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from conftest import SUBSET, needs
from synthetic import make_image_folder

from pipeline import data
from pipeline.config import DEFAULT_SEED, DEFAULT_SPLIT
from pipeline.errors import DataError


@pytest.mark.parametrize("name, expected", [("COVID", "COVID"), ("covid", "COVID"), ("Lung_Opacity", "Lung_Opacity"),
                                            ("lung-opacity", "Lung_Opacity"), ("Viral_Pneumonia", "Viral Pneumonia"),
                                            ("masks", None), ("Pneumonia", None)])
def test_canonical_class(name, expected):
    assert data.canonical_class(name) == expected


def test_kaggle_layout_nested_like_kagglehub(tmp_path):
    make_image_folder(tmp_path / "versions" / "5" / "COVID-19_Radiography_Dataset", per_class=3, manifest=False)
    assert data.find_class_root(tmp_path).name == "COVID-19_Radiography_Dataset"
    dataset = data.scan_dataset(tmp_path)
    assert dataset.classes == ["COVID", "Normal", "Viral Pneumonia"] and len(dataset.samples) == 9


def test_plain_class_folders_and_jpeg(tmp_path):
    make_image_folder(tmp_path, per_class=4, kaggle_layout=False, manifest=False)
    (tmp_path / "Normal" / "Normal-0.png").rename(tmp_path / "Normal" / "extra.JPG")
    dataset = data.scan_dataset(tmp_path)
    assert dataset.counts() == {"COVID": 4, "Normal": 4, "Viral Pneumonia": 4}
    assert any(s.path.endswith("extra.JPG") for s in dataset.samples)


def test_masks_are_ignored(tmp_path):
    make_image_folder(tmp_path, per_class=2, manifest=False)
    (tmp_path / "COVID" / "masks").mkdir()
    make_image_folder(tmp_path / "COVID" / "masks" / "x", per_class=1, manifest=False)
    assert len(data.scan_dataset(tmp_path).samples) == 6


def test_classes_in_canonical_order_and_missing_class_reported(tmp_path, caplog):
    make_image_folder(tmp_path, classes=("Viral Pneumonia", "COVID"), per_class=2, manifest=False)
    with caplog.at_level(logging.WARNING):
        dataset = data.scan_dataset(tmp_path)
    assert dataset.classes == ["COVID", "Viral Pneumonia"]
    assert "Lung_Opacity, Normal" in caplog.text


def test_corrupt_files_are_skipped_and_counted(tmp_path, caplog):
    make_image_folder(tmp_path, per_class=3, manifest=False)
    (tmp_path / "COVID" / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (tmp_path / "Normal" / "images" / "empty.jpg").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        dataset = data.scan_dataset(tmp_path)
    assert len(dataset.samples) == 9 and len(dataset.skipped) == 2
    assert "skipped 2 unreadable" in caplog.text


def test_missing_folder_says_how_to_get_data(tmp_path):
    with pytest.raises(DataError, match="does not exist.*python -m pipeline download"):
        data.scan_dataset(tmp_path / "nope")


def test_folder_without_classes(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(DataError, match="no class folders.*COVID, Lung_Opacity, Normal, Viral Pneumonia"):
        data.scan_dataset(tmp_path)


def test_mislabelled_folder_is_named(tmp_path):
    make_image_folder(tmp_path, per_class=1, manifest=False)
    (tmp_path / "Tuberculosis").mkdir()
    with pytest.raises(DataError, match=r"\['Tuberculosis'\].*valid class folders"):
        data.scan_dataset(tmp_path)


def test_empty_class_folder_is_named(tmp_path):
    make_image_folder(tmp_path, per_class=1, manifest=False)
    (tmp_path / "Lung_Opacity" / "images").mkdir(parents=True)
    with pytest.raises(DataError, match="Lung_Opacity.*has no images"):
        data.scan_dataset(tmp_path)


def test_folder_with_a_class_the_model_lacks(tmp_path):
    make_image_folder(tmp_path, per_class=1, manifest=False)
    with pytest.raises(DataError, match="not classes of this model"):
        data.scan_dataset(tmp_path, classes=["COVID", "Normal"])


def test_manifest_gives_groups_and_sources(image_folder):
    dataset = data.scan_dataset(image_folder)
    assert {s.source for s in dataset.samples} == {"source-0", "source-1"}
    assert all(s.group for s in dataset.samples)


def _labels_groups(n_per_class=(300, 200, 100), seed=0):
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(n_per_class)])
    groups = [f"g{rng.integers(0, len(labels) // 3)}-{label}" for label in labels]
    return labels, groups


def test_split_is_deterministic_and_seeded():
    labels, groups = _labels_groups()
    a, b = data.split_indices(labels, groups, seed=1), data.split_indices(labels, groups, seed=1)
    c = data.split_indices(labels, groups, seed=2)
    assert all(np.array_equal(a[k], b[k]) for k in data.SPLITS)
    assert not np.array_equal(a["test"], c["test"])


def test_split_is_a_stratified_partition_keeping_groups_together():
    labels, groups = _labels_groups()
    splits = data.split_indices(labels, groups, (0.7, 0.15, 0.15), seed=0)
    everything = np.sort(np.concatenate(list(splits.values())))
    assert np.array_equal(everything, np.arange(len(labels)))
    for name, share in zip(data.SPLITS, (0.7, 0.15, 0.15)):
        for c in range(3):
            got = np.mean(labels[splits[name]] == c) if len(splits[name]) else 0
            assert abs(np.sum(labels[splits[name]] == c) / np.sum(labels == c) - share) < 0.04, (name, c, got)
    seen = {name: {groups[i] for i in idx} for name, idx in splits.items()}
    assert not (seen["train"] & seen["val"] or seen["train"] & seen["test"] or seen["val"] & seen["test"])


def test_split_rejects_bad_fractions():
    with pytest.raises(DataError, match="summing to 1"):
        data.split_indices(np.array([0, 1]), None, (0.5, 0.5, 0.5))


def test_class_balance_weighs_every_class_equally():
    samples = [data.Sample(f"{i}.png", label, "a") for i, label in enumerate([0, 0, 0, 1])]
    weights = data.sample_weights(samples, "class")
    assert weights == pytest.approx([4 / 6, 4 / 6, 4 / 6, 2.0])  # scikit-learn's "balanced" n / (k * count)
    assert weights.mean() == pytest.approx(1.0)


def test_chain_balance_splits_each_class_among_its_chains():
    # Normal through two chains (3 images and 1), COVID through one: each class weighs 3 of 6 in total,
    # each Normal chain half of that, whatever its image count.
    chains = [("kermany", 1), ("kermany", 1), ("kermany", 1), ("kaggle", 1), ("kaggle", 0), ("kaggle", 0)]
    samples = [data.Sample(f"{i}.png", label, chain) for i, (chain, label) in enumerate(chains)]
    weights = data.sample_weights(samples, "chain")
    assert weights == pytest.approx([0.5, 0.5, 0.5, 1.5, 1.5, 1.5])
    assert data.sample_weights(samples, "class") == pytest.approx([0.75, 0.75, 0.75, 0.75, 1.5, 1.5])
    with pytest.raises(DataError, match="valid: class, chain"):
        data.sample_weights(samples, "source")


def test_limit_per_class(image_folder):
    limited = data.limit_per_class(data.scan_dataset(image_folder), 5, seed=0)
    assert limited.counts() == {"COVID": 5, "Normal": 5, "Viral Pneumonia": 5}


def test_manifest_subgroup_columns_are_kept(image_folder):
    dataset = data.scan_dataset(image_folder)
    flags = {dict(s.subgroups).get("kermany_pediatric") for s in dataset.samples}
    assert flags == {"0", "1"}


def test_composition_counts_each_source_and_subgroup_per_class(image_folder):
    dataset = data.scan_dataset(image_folder)
    composition = dataset.composition()
    assert set(composition["sources"]) == {"source-0", "source-1"}
    for kind in ("sources", "subgroups"):
        totals = {c: sum(v[c] for v in composition[kind].values()) for c in dataset.classes}
        assert totals == dataset.counts(), f"every image counted once in {kind}"
    assert composition["subgroups"]["kermany_pediatric=1"]["COVID"] == 6, "i % 4 == 0 for 6 of 24"


def _tiny_manifest(root):
    """Eight X-rays: patient p1 spans groups a and b; p2 has one X-ray without a group; two have neither."""
    make_image_folder(root, per_class=4, manifest=False)
    rows = [("COVID/images/COVID-0.png", "a", "p1"), ("COVID/images/COVID-1.png", "a", ""),
            ("Normal/images/Normal-0.png", "b", "p1"), ("Normal/images/Normal-1.png", "b", ""),
            ("Normal/images/Normal-2.png", "", "p2"), ("Viral Pneumonia/images/Viral Pneumonia-0.png", "", "p2"),
            ("Viral Pneumonia/images/Viral Pneumonia-1.png", "c", ""), ("COVID/images/COVID-2.png", "", "")]
    lines = ["path,label,source,group,patient"] + [f"{p},{p.split('/')[0]},s,{g},{pt}" for p, g, pt in rows]
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return data.scan_dataset(root)


def test_a_patient_spanning_two_groups_joins_them(tmp_path):
    dataset = _tiny_manifest(tmp_path)
    by_name = {Path(s.path).name: s for s in dataset.samples}
    assert by_name["Normal-0.png"].patient == "p1" and by_name["COVID-1.png"].patient is None
    assert data.split_keys(dataset.samples) == ["group", "patient"]
    units = data.linked_components(len(dataset.samples), [s.group for s in dataset.samples],
                                   [s.patient for s in dataset.samples])
    unit = {name: units[i] for i, name in enumerate(by_name)}
    assert unit["COVID-0.png"] == unit["COVID-1.png"] == unit["Normal-0.png"] == unit["Normal-1.png"], "a+b via p1"
    assert unit["Normal-2.png"] == unit["Viral Pneumonia-0.png"], "p2 without a group"
    alone = ["Viral Pneumonia-1.png", "COVID-2.png", "COVID-3.png", "Normal-3.png"]
    assert len({unit[name] for name in alone} | {unit["COVID-0.png"], unit["Normal-2.png"]}) == 6


@pytest.mark.parametrize("seed", range(8))
def test_the_split_never_separates_a_patient_from_their_groups(tmp_path, seed):
    dataset = _tiny_manifest(tmp_path)
    groups, patients = [s.group for s in dataset.samples], [s.patient for s in dataset.samples]
    splits = data.split_indices(dataset.labels, groups, (0.4, 0.3, 0.3), seed, patients)
    where = {i: name for name, idx in splits.items() for i in idx}
    linked = [i for i, s in enumerate(dataset.samples) if s.group in ("a", "b")]
    assert len({where[i] for i in linked}) == 1, "groups a and b share patient p1"
    assert len({where[i] for i, p in enumerate(patients) if p == "p2"}) == 1


def test_without_patients_the_split_keys_on_groups_alone():
    labels, groups = _labels_groups()
    unknown = data.split_indices(labels, groups, seed=3, patients=[""] * len(labels))
    assert all(np.array_equal(a, b) for a, b in zip(data.split_indices(labels, groups, seed=3).values(),
                                                     unknown.values()))
    assert data.split_keys([data.Sample("x.png", 0)]) == []


@needs(SUBSET)
def test_the_real_split_keeps_every_patient_and_group_in_one_split():
    dataset = data.scan_dataset(SUBSET, check_images=False)
    assert data.split_keys(dataset.samples) == ["group", "patient"]
    splits = data.split_indices(dataset.labels, [s.group for s in dataset.samples], DEFAULT_SPLIT, DEFAULT_SEED,
                                [s.patient for s in dataset.samples])
    for key in ("group", "patient"):
        seen = {name: {getattr(dataset.samples[i], key) for i in idx} - {None} for name, idx in splits.items()}
        assert seen["train"] and seen["test"], key
        assert not (seen["train"] & seen["val"] or seen["train"] & seen["test"] or seen["val"] & seen["test"]), key
