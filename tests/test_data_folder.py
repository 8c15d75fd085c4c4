"""The staged data folder's readers (lorabar.harness.tasks.data_folder): MeZO few-shot splits and
full
GLUE on ../shared/data, their errors, the stratified eval subset, label noise."""

from __future__ import annotations

import pytest

from lorabar.harness.tasks import data_folder as D


FEWSHOT = {
    "sst2": (1024, 1024, 872),
    "sst5": (2560, 2560, 1000),
    "trec": (2646, 2243, 500),
    "rte": (1024, 1024, 277),
    "snli": (1536, 1536, 1000),
    "mnli": (1536, 1536, 1000),
    "qnli": (1024, 1024, 1000),
    "qqp": (1024, 1024, 1000),
    "mrpc": (1024, 1024, 408),
    "cola": (1024, 1024, 1000),
    "stsb": (1024, 1024, 1000),
}


@pytest.mark.data
@pytest.mark.parametrize("task", sorted(FEWSHOT))
def test_fewshot_loaders(task, data_dir):
    for seed in D.SEEDS:
        sizes = tuple(len(D.load_split(task, s, data_dir=data_dir, seed=seed)) for s in D.SPLITS)
        assert sizes == FEWSHOT[task], (task, seed)
    train = D.load_split(task, "train", data_dir=data_dir, seed=13)
    t = D.TASKS[task]
    if t.is_regression:
        assert all(0.0 <= e.label <= 5.0 for e in train)
    else:
        counts = [sum(e.label == k for e in train) for k in range(t.num_labels)]
        expected = [512] * t.num_labels
        if task == "trec":
            expected[2] = 86  # ABBR
        assert counts == expected
    assert all(e.text_a for e in train)
    assert (train[0].text_b is None) == (task in ("sst2", "sst5", "trec", "cola"))


@pytest.mark.data
def test_full_glue_loaders(data_dir):
    # train + held-out dev = the GLUE train set; GLUE dev is the test set.
    full = {
        "sst2": (67349, 872),
        "rte": (2490, 277),
        "mrpc": (3668, 408),
        "cola": (8551, 1043),
        "stsb": (5749, 1500),
    }
    for task, (n_train, n_test) in full.items():
        sizes = [len(D.load_split(task, s, data_dir=data_dir, setting="full")) for s in D.SPLITS]
        assert sizes[0] + sizes[1] == n_train and sizes[2] == n_test, task
    with pytest.raises(ValueError, match=r"Invalid setting: 'full' for task 'snli'"):
        D.load_split("snli", "train", data_dir=data_dir, setting="full")


@pytest.mark.data
def test_data_errors(tmp_path, monkeypatch, data_dir):
    monkeypatch.delenv(D.DATA_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=r"pass --data-dir DIR or set LORABAR_DATA_DIR"):
        D.load_split("sst2", "train")
    with pytest.raises(FileNotFoundError, match=r"Data directory '/nonexistent' does not exist"):
        D.load_split("sst2", "train", data_dir="/nonexistent")
    with pytest.raises(ValueError, match=r"Invalid task: 'imdb'"):
        D.load_split("imdb", "train", data_dir=data_dir)
    with pytest.raises(ValueError, match=r"Invalid split: 'val'"):
        D.load_split("sst2", "val", data_dir=data_dir)
    with pytest.raises(ValueError, match=r"Invalid seed: 7"):
        D.load_split("sst2", "train", data_dir=data_dir, seed=7)
    with pytest.raises(
        D.DataError, match=r"Missing few-shot folder .*sst2/k-shot-1k-test/SST-2/512-13"
    ):
        D.load_split("sst2", "train", data_dir=tmp_path)
    folder = tmp_path / "rte" / "k-shot-1k-test" / "RTE" / "512-13"
    folder.mkdir(parents=True)
    with pytest.raises(D.DataError, match=r"Missing data file .*train.tsv"):
        D.load_split("rte", "train", data_dir=tmp_path)
    (folder / "train.tsv").write_text("index\ts1\ts2\tlabel\n0\ta\tb\tentailment\n1\tc\td\tmaybe\n")
    with pytest.raises(D.DataError, match=r"train.tsv:3: label 'maybe' is not one of"):
        D.load_split("rte", "train", data_dir=tmp_path)
    (folder / "train.tsv").write_text("index\ts1\ts2\tlabel\n0\tonly two\n")
    with pytest.raises(D.DataError, match=r"train.tsv:2: malformed row for task 'rte': 2 fields"):
        D.load_split("rte", "train", data_dir=tmp_path)


@pytest.mark.data
def test_max_eval_subset_is_stratified_and_seeded(data_dir):
    dev = D.load_split("snli", "dev", data_dir=data_dir, seed=13)
    labels = [e.label for e in dev]
    assert labels[:500] == [labels[0]] * 500  # why "the first N" was wrong: one class
    sub = D.subset(dev, 500, seed=0, labels=labels)
    counts = sorted(sum(e.label == k for e in sub) for k in range(3))
    assert len(sub) == 500 and counts == [166, 167, 167]
    assert sub == D.subset(dev, 500, seed=0, labels=labels)
    assert sub != D.subset(dev, 500, seed=1, labels=labels)
    assert [dev.index(e) for e in sub] == sorted(dev.index(e) for e in sub)  # file order
    assert D.subset(dev, 0, labels=labels) == dev and len(D.subset(dev, 10**6)) == len(dev)
    with pytest.raises(ValueError, match=r"Invalid subset size: -5"):
        D.subset(dev, -5)


def test_flip_labels_is_seeded_and_flips_to_another_class():
    from lorabar.harness.tasks.encoder_task import flip_labels

    ex = [D.Example(f"t{i}", None, i % 3) for i in range(100)]
    out, n = flip_labels(ex, 0.3, 3, seed=13)
    changed = [i for i, (a, b) in enumerate(zip(ex, out)) if a.label != b.label]
    assert n == 30 and len(changed) == 30  # every chosen label really changes
    assert all(0 <= e.label < 3 for e in out) and [e.text_a for e in out] == [e.text_a for e in ex]
    assert flip_labels(ex, 0.3, 3, seed=13)[0] == out and flip_labels(ex, 0.3, 3, seed=21)[0] != out
