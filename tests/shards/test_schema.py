import json

import pyarrow as pa
import pytest

from shards.format.schema import FIELDS, INDEX_SCHEMA, FormatError, SampleMeta, check_key

GOOD = dict(
    key="flickr-12345", width=4032, height=3024, orientation=6, format="jpeg", ext="jpg", mode="RGB",
    nbytes=123, sha256="a" * 64, phash="0123456789abcdef", source="flickr", source_id="12345",
)


@pytest.mark.parametrize("key", ["flickr-1", "url-0123456789abcdef0123", "file-x_y", "0", "a" * 80])
def test_valid_keys(key):
    assert check_key(key) == key


@pytest.mark.parametrize("key", ["", "a.b", "Flickr-1", "-lead", "_lead", "a/b", "../x", "a b", "a" * 81, None, 7])
def test_invalid_keys_are_refused(key):
    with pytest.raises(FormatError, match="invalid sample key"):
        check_key(key)


def test_json_round_trip_keeps_extra_fields_and_is_canonical():
    meta = SampleMeta(**GOOD, license="cc-by", dup_count=2, extra={"duplicates": ["url-a", "url-b"]})
    data = meta.to_json_bytes()
    assert SampleMeta.from_json_bytes(data) == meta
    assert data == SampleMeta.from_json_bytes(data).to_json_bytes()
    assert list(json.loads(data)) == sorted(json.loads(data))  # sorted keys: same sample, same bytes


def test_index_only_columns_are_not_carried_as_extra():
    doc = {**GOOD, "shard": "shards/shard-000000.tar", "offset": 512}
    assert SampleMeta.from_dict(doc).extra == {}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"width": 0}, "non-positive size"),
        ({"orientation": 9}, "orientation 9"),
        ({"sha256": "xyz"}, "sha256"),
        ({"phash": "123"}, "phash"),
        ({"source": "s3"}, "source must be"),
        ({"width": "4032"}, "'width' must be int"),
        ({"nbytes": True}, "'nbytes' must be int"),
        ({"ext": "tar.gz"}, "invalid member extension"),
    ],
)
def test_bad_fields_are_refused(change, message):
    with pytest.raises(FormatError, match=message):
        SampleMeta(**{**GOOD, **change})


def test_missing_field_and_bad_json():
    doc = dict(GOOD)
    del doc["sha256"]
    with pytest.raises(FormatError, match="missing fields \\['sha256'\\]"):
        SampleMeta.from_dict(doc)
    with pytest.raises(FormatError, match="not valid JSON"):
        SampleMeta.from_json_bytes(b"{not json")
    with pytest.raises(FormatError, match="shadow"):
        SampleMeta(**GOOD, extra={"width": 3})


def test_index_schema_matches_sample_fields():
    assert INDEX_SCHEMA.names == [*FIELDS, "shard", "offset"]
    table = pa.Table.from_pylist([{**SampleMeta(**GOOD).to_record(), "shard": "s", "offset": 0}], schema=INDEX_SCHEMA)
    assert table.num_rows == 1 and INDEX_SCHEMA.metadata[b"version"] == b"1"
