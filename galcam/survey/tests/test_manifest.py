"""Fingerprints and the manifest file."""

import json
import os

import pytest

from galcam.survey.manifest import (
    file_fingerprint,
    read_manifest,
    run_fingerprint,
    write_manifest,
)


def test_file_fingerprint_sees_changes_at_both_ends(tmp_path):
    path = tmp_path / "big.bin"
    data = bytearray(os.urandom(3 * 2**20))
    path.write_bytes(data)
    fp = file_fingerprint(path)
    assert fp["size"] == len(data) and fp["path"] == str(path.resolve())
    assert file_fingerprint(path)["sha256_head_tail"] == fp["sha256_head_tail"]
    for pos in (10, len(data) - 10):
        changed = bytearray(data)
        changed[pos] ^= 0xFF
        path.write_bytes(changed)
        assert file_fingerprint(path)["sha256_head_tail"] != fp["sha256_head_tail"]


def test_run_fingerprint_ignores_paths_not_contents():
    a = {"mosaic": {"path": "/a/m.fits", "size": 10, "mtime": "x", "sha256_head_tail": "h"},
         "ir": None}
    b = {"mosaic": {"path": "/b/m.fits", "size": 10, "mtime": "y", "sha256_head_tail": "h"},
         "ir": None}
    model = {"path": "/m", "config_sha256": "c"}
    assert run_fingerprint(a, model, {"s": 1}) == run_fingerprint(b, model, {"s": 1})
    assert run_fingerprint(a, model, {"s": 1}) != run_fingerprint(a, model, {"s": 2})
    assert run_fingerprint(a, model, {"s": 1}) != run_fingerprint(
        a, {"path": "/m", "config_sha256": "d"}, {"s": 1})


def test_manifest_round_trip_and_errors(tmp_path):
    assert read_manifest(tmp_path) is None
    written = write_manifest(tmp_path, {"fingerprint": "f", "units": {"total": 2}})
    assert read_manifest(tmp_path) == json.loads(json.dumps(written))
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="unreadable survey manifest"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text('{"schema": "something else"}')
    with pytest.raises(ValueError, match="not a galcam survey manifest"):
        read_manifest(tmp_path)
