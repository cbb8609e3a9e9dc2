"""Listing a collection's inputs and naming its outputs (codec/archive/inputs.py; no Ray needed)."""

from __future__ import annotations

import pytest

pa = pytest.importorskip("pyarrow")

import pyarrow.parquet as pq  # noqa: E402

from sdcodec.codec.archive import inputs, manifest  # noqa: E402
from sdcodec.codec.errors import SdcodecError  # noqa: E402


@pytest.fixture
def tree(tmp_path):
    for name in ("a.png", "b.jpg", "sub/c.png", "sub/notes.txt", ".hidden/d.png", ".e.png"):
        path = tmp_path / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return tmp_path


def rows_of(sources, out, recursive=False):
    rows = inputs.list_rows(
        sources, str(out), output_suffix=".sdz", input_suffixes=inputs.image_suffixes(), recursive=recursive
    )
    return [(r.input, r.output) for r in rows]


# Local paths go through the batch mode's expand_inputs; file:// URIs through the pyarrow listing
# that s3:// and gs:// take. Both must name the same files and the same outputs.
LOCAL_AND_URI = pytest.mark.parametrize("scheme", ["", "file://"])


@LOCAL_AND_URI
def test_a_directory_gives_its_images_every_level_with_recursive_and_no_hidden_names(tree, scheme):
    root, out = tree / "in", tree / "out"
    source = scheme + str(root)
    assert rows_of([source], out) == [
        (scheme + str(root / "a.png"), str(out / "a.sdz")),
        (scheme + str(root / "b.jpg"), str(out / "b.sdz")),
    ]
    assert rows_of([source], out, recursive=True)[-1] == (scheme + str(root / "sub/c.png"), str(out / "sub/c.sdz"))
    assert len(rows_of([source], out, recursive=True)) == 3


@LOCAL_AND_URI
def test_a_glob_match_and_a_named_file_keep_their_names(tree, scheme):
    root, out = tree / "in", tree / "out"
    assert rows_of([scheme + str(root / "*" / "*.png")], out) == [
        (scheme + str(root / "sub/c.png"), str(out / "c.sdz"))
    ]
    assert rows_of([scheme + str(root / "**" / "*.png")], out) == [
        (scheme + str(root / "a.png"), str(out / "a.sdz")),
        (scheme + str(root / "sub/c.png"), str(out / "c.sdz")),
    ]
    named = scheme + str(root / "sub/notes.txt")
    assert rows_of([named], out) == [(named, str(out / "notes.sdz"))]


def test_csv_and_parquet_manifests_list_paths_and_optional_outputs(tree):
    root, out = tree / "in", tree / "out"
    csv = tree / "list.csv"
    csv.write_text(f"path\n{root / 'a.png'}\n{root / 'sub/c.png'}\n")
    assert rows_of([str(csv)], out) == [
        (str(root / "a.png"), str(out / "a.sdz")),
        (str(root / "sub/c.png"), str(out / "c.sdz")),
    ]
    table = pa.table({"uri": [str(root / "b.jpg")], "output": ["deep/b-out.sdz"]})
    pq.write_table(table, tree / "list.parquet")
    assert rows_of([str(tree / "list.parquet")], out) == [(str(root / "b.jpg"), str(out / "deep/b-out.sdz"))]


def test_two_inputs_for_one_output_missing_sources_and_bad_manifests_are_one_line_errors(tree):
    root, out = tree / "in", tree / "out"
    (root / "a.jpg").write_bytes(b"x")
    with pytest.raises(SdcodecError, match="would both be written to"):
        rows_of([str(root)], out)
    (tree / "bad.csv").write_text("name\nx\n")
    with pytest.raises(SdcodecError, match="has no column named path"):
        rows_of([str(tree / "bad.csv")], out)
    for scheme in ("", "file://"):
        with pytest.raises(SdcodecError, match="no file matches this pattern"):
            rows_of([scheme + str(root / "*.gif")], out)
        with pytest.raises(SdcodecError, match="no file matches this pattern"):
            rows_of([scheme + str(tree / "missing" / "*.png")], out)
        with pytest.raises(SdcodecError, match="no such file or directory"):
            rows_of([scheme + str(tree / "missing")], out)


def test_the_same_input_listed_twice_is_one_row(tree):
    root, out = tree / "in", tree / "out"
    assert rows_of([str(root / "a.png"), str(root / "*.png")], out) == [(str(root / "a.png"), str(out / "a.sdz"))]


def test_a_jobs_own_manifest_lists_the_files_it_wrote_named_relative_to_its_folder(tmp_path):
    out = tmp_path / "sdz"
    rows = [
        manifest.empty_row("/in/a.png", str(out / "a.sdz")) | {"sha256": "00", "bytes": 1},
        manifest.empty_row("/in/sub/b.png", str(out / "sub/b.sdz")) | {"sha256": "11", "bytes": 1},
        manifest.empty_row("/in/bad.png", str(out / "bad.sdz")) | {"error": "ImageReadError: not an image"},
        manifest.empty_row("/in/c.png", str(tmp_path / "elsewhere/c.sdz")) | {"sha256": "22", "bytes": 1},
    ]
    with manifest.ManifestWriter(str(out / "manifest.parquet")) as writer:
        writer.write(rows)
    pngs = tmp_path / "png"
    listed = inputs.list_rows(
        [str(out / "manifest.parquet")], str(pngs), output_suffix=".png", input_suffixes=inputs.SDZ_SUFFIXES
    )
    assert [(r.input, r.output) for r in listed] == [
        (str(out / "a.sdz"), str(pngs / "a.png")),
        (str(out / "sub/b.sdz"), str(pngs / "sub/b.png")),
        (str(tmp_path / "elsewhere/c.sdz"), str(pngs / "c.png")),
    ]


def test_a_manifest_written_before_the_notes_column_still_reads_and_its_rows_are_kept(tmp_path):
    """A re-run over an older job's manifest (no ``notes``) keeps its intact rows under the new schema."""
    output = tmp_path / "a.png"
    output.write_bytes(b"png bytes")
    old_schema = pa.schema([field for field in manifest.SCHEMA if field.name != "notes"])
    old_row = {name: None for name in old_schema.names} | {
        "input": "/in/a.sdz",
        "output": str(output),
        "bytes": 9,
        "sha256": manifest.sha256_of(b"png bytes"),
    }
    pq.write_table(pa.Table.from_pylist([old_row], schema=old_schema), tmp_path / "old.parquet")
    previous = manifest.read_manifest(str(tmp_path / "old.parquet"))
    kept = manifest.reusable_rows(previous, {"/in/a.sdz": str(output)})
    assert set(kept) == {"/in/a.sdz"}
    with manifest.ManifestWriter(str(tmp_path / "new.parquet")) as writer:
        writer.write(list(kept.values()))
    (row,) = manifest.read_manifest(str(tmp_path / "new.parquet"))
    assert row["notes"] is None and row["sha256"] == old_row["sha256"] and row["output"] == str(output)
