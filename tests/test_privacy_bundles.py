"""Erasure reaches every copy: the serving bundle and the retained previous bundles on disk are
rewritten without the person, in the same ``forget_user`` call, and the receipt says so."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from flask import Flask
from test_engine_train import SMALL, fill

from storefront_recs.engine.bundle import POINTER, validate
from storefront_recs.serving.model import ServingStore

PERSON = "user-5"  # stored under the raw key by fill(); forget_user finds both forms


def user_ids(directory: Path) -> list[str]:
    return json.loads((directory / "user_ids.json").read_text())


def test_forget_user_rewrites_every_retained_bundle_without_the_person(sqlite_app: Flask) -> None:
    sqlite_app.config.update(SMALL, RECS_KEEP_BUNDLES=3, RECS_QUALITY_GATE_MARGIN=-1)
    recs = fill(sqlite_app)
    model_dir = Path(sqlite_app.config["RECS_MODEL_DIR"])
    with sqlite_app.app_context():
        versions = [recs.train().version for _ in range(3)]
    assert sorted(p.name for p in model_dir.iterdir() if not p.name.startswith(".") and p.is_dir()) == versions
    rows = {}
    for version in versions:
        ids = user_ids(model_dir / version)
        assert PERSON in ids
        rows[version] = np.load(model_dir / version / "als_user_factors.npy")[ids.index(PERSON)].copy()
    serving = model_dir / versions[-1] / "als_user_factors.npy"
    mapped = np.load(serving, mmap_mode="r")  # as a worker serving it maps it
    before = np.array(mapped)
    inode = os.stat(serving).st_ino

    with sqlite_app.app_context():
        receipt = recs.forget_user(PERSON)
    assert receipt["model_bundles"] == {"checked": 3, "rewritten": versions, "failed": []}
    for version in versions:
        directory = model_dir / version
        ids = user_ids(directory)
        assert PERSON not in ids and ids  # the others stay
        manifest = validate(str(directory))  # every file's sha256 and size match the manifest
        assert manifest["erased_user_rows"] == 1
        factors = np.load(directory / "als_user_factors.npy")
        assert factors.shape[0] == len(ids)
        assert not np.any(np.all(np.isclose(factors, rows[version]), axis=1))  # their factors are gone
        assert not any(name.startswith(("user_ids.json.", "als_user_factors.npy.", "manifest.json."))
                       for name in os.listdir(directory))  # no temporary file left behind
    assert os.stat(serving).st_ino != inode  # replaced by a new file, never rewritten in place
    assert np.array_equal(np.array(mapped), before)  # a mapping made before still reads
    assert (model_dir / POINTER).read_text().strip() == versions[-1]
    fresh = ServingStore(str(model_dir)).current()  # a new worker loads the rewritten bundle
    assert fresh is not None and fresh.version == versions[-1] and PERSON not in fresh.user_index
    with sqlite_app.app_context():
        assert recs.for_you(user_id="user-6", n=4)


def test_a_person_erased_while_a_run_trains_is_not_in_its_bundle(sqlite_app: Flask) -> None:
    sqlite_app.config.update(SMALL, RECS_HASH_USER_IDS=False)  # fill() stores raw keys: the current form
    recs = fill(sqlite_app)
    receipts = []

    def erase_while_writing(stage: str) -> None:
        if stage == "write":  # the events were read before the erasure
            receipts.append(recs.forget_user(PERSON))

    with sqlite_app.app_context():
        report = recs.train(progress=erase_while_writing)
    assert report.published and receipts
    directory = Path(sqlite_app.config["RECS_MODEL_DIR"]) / str(report.version)
    assert PERSON not in user_ids(directory)
    validate(str(directory))


def test_a_bundle_refused_mid_rewrite_is_loaded_once_its_manifest_changes(sqlite_app: Flask) -> None:
    sqlite_app.config.update(SMALL)
    recs = fill(sqlite_app)
    with sqlite_app.app_context():
        version = str(recs.train().version)
    model_dir = Path(sqlite_app.config["RECS_MODEL_DIR"])
    directory = model_dir / version
    original = (directory / "user_ids.json").read_bytes()
    (directory / "user_ids.json").write_bytes(b'["half-way"]')  # what a loader may see mid-rewrite
    store = ServingStore(str(model_dir), check_interval=0)
    assert store.current() is None  # refused
    (directory / "user_ids.json").write_bytes(original)
    assert store.current() is None  # not tried again while the manifest is the same
    manifest = directory / "manifest.json"
    stamp = os.stat(manifest).st_mtime_ns
    replacement = directory / "manifest.json.new"
    replacement.write_bytes(manifest.read_bytes())
    os.utime(replacement, ns=(stamp + 10**9, stamp + 10**9))
    os.replace(replacement, manifest)  # the rewrite's last step
    loaded = store.current()
    assert loaded is not None and loaded.version == version
