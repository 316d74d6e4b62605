"""The parts of the Flickr source that need no download: the licence table and `--licenses`,
credentials that stay out of pickles and messages, the size choice and the checks made before
download, and `flickr-ids` lookups (getInfo, then getSizes only where the photo can be used)."""

import argparse
import pickle

import pytest

from curation.sources.flickr.api import ApiConfig, Credentials, FlickrClient, load_credentials
from curation.sources.flickr.discovery import choose_size, search_record
from curation.sources.flickr.ids import IdsDiscovery, parse_line
from curation.sources.flickr.journal import Journal
from curation.sources.flickr.licenses import LICENSES, REUSE, compare_with_api, parse_licenses
from curation.sources.flickr.source import FlickrIdsSource, make_item
from shards import DatasetError

from .fake_flickr import KEY, SECRET, FakePhoto, day


def client_for(fake):
    return FlickrClient(Credentials(KEY, SECRET), ApiConfig(endpoint=fake.endpoint, calls_per_hour=3.6e7))


def test_the_licence_table_agrees_with_flickrs_getinfo(flickr):
    fake = flickr([])
    assert compare_with_api(client_for(fake).call("flickr.photos.licenses.getInfo")) == []
    answer = fake.licenses_answer
    listed = answer["licenses"]["license"]
    listed[4]["url"] = "https://creativecommons.org/licenses/by/3.0/"
    listed.pop()  # id 16
    listed.append({"id": 17, "name": "CC BY 5.0", "url": "https://creativecommons.org/licenses/by/5.0/"})
    problems = compare_with_api(client_for(fake).call("flickr.photos.licenses.getInfo"))
    assert len(problems) == 3
    assert "licence 17 (CC BY 5.0) is not in the built-in table" in problems
    assert any(p.startswith("licence 16 (cc-by-nc-nd-4.0)") for p in problems)
    assert any(p.startswith("licence 4: built-in URL https://creativecommons.org/licenses/by/2.0/") for p in problems)


def test_licences_default_to_reuse_and_all_rights_reserved_only_when_named():
    assert REUSE == (4, 5, 7, 8, 9, 10, 11, 12) and 0 not in parse_licenses("any-open")
    assert parse_licenses("cc-by,cc-by-sa,cc0,pdm") == (4, 5, 9, 10, 11, 12)
    assert parse_licenses("cc-by-2.0, CC0-1.0") == (4, 9)
    assert parse_licenses("all-rights-reserved") == parse_licenses("arr") == parse_licenses("0") == (0,)
    assert parse_licenses("reuse,arr") == (0, *REUSE)
    assert [LICENSES[i].name for i in parse_licenses("cc-by")] == ["cc-by-2.0", "cc-by-4.0"]
    for bad in ("cc-by-zz", "", "99"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_licenses(bad)


def test_credentials_come_from_the_environment_or_a_file_and_never_leak(tmp_path):
    assert load_credentials(environ={"FLICKR_API_KEY": "k1", "FLICKR_API_SECRET": "s1"}) == Credentials("k1", "s1")
    (tmp_path / "two").write_text("k2\ns2\n")
    (tmp_path / "env").write_text("# mine\nexport FLICKR_API_KEY='k3'\nFLICKR_API_SECRET=s3\n")
    assert load_credentials(str(tmp_path / "two"), environ={}) == Credentials("k2", "s2")
    assert load_credentials(str(tmp_path / "env"), environ={}) == Credentials("k3", "s3")
    with pytest.raises(DatasetError, match="no Flickr API key and secret in FLICKR_API_KEY"):
        load_credentials(environ={"FLICKR_API_KEY": "only-the-key"})
    (tmp_path / "bad").write_text("key=supersecretvalue\n")
    with pytest.raises(DatasetError) as missing:
        load_credentials(str(tmp_path / "bad"), environ={})
    assert "supersecretvalue" not in str(missing.value)
    creds = Credentials("the-key", "the-secret")
    assert "the-key" not in repr(creds) and "the-secret" not in repr(creds)
    shipped = pickle.dumps(creds)  # what a Ray worker would receive
    assert b"the-key" not in shipped and b"the-secret" not in shipped
    assert creds.redact("bad key the-key and the-secret") == "bad key [redacted] and [redacted]"


def test_the_original_is_taken_where_listed_else_the_largest_size():
    sizes = [{"code": "l", "label": "Large", "url": "L", "width": 1024, "height": 768},
             {"code": "k", "label": "Large 2048", "url": "K", "width": 2048, "height": 1536},
             {"code": "o", "label": "Original", "url": "O", "width": 1800, "height": 1200}]
    assert choose_size(sizes)["url"] == "O"  # the owner's file, even where a resize is listed larger
    assert choose_size(sizes[:2])["url"] == "K"
    assert choose_size([]) is None


def record(**kw):
    photo = {"id": "42", "owner": "1@N01", "ownername": "Ann", "pathalias": "ann", "title": "Peak", "license": "4",
             "dateupload": str(day(2020, 1, 2)), "datetaken": "2019-12-31 23:59:00", "datetakenunknown": "0",
             "originalformat": "jpg", "media": "photo", "url_o": "http://h/o.jpg", "width_o": 3000, "height_o": 2000,
             "url_l": "http://h/l.jpg", "width_l": 1024, "height_l": 683}
    return search_record({**photo, **kw})


def test_items_carry_full_attribution_and_checks_before_download():
    item = make_item(7, record(), REUSE, 1024)
    assert (item.position, item.key, item.source, item.source_id, item.location) == (7, "flickr-42", "flickr", "42",
                                                                                      "http://h/o.jpg")
    assert item.error is None
    assert item.provenance == {"url": "https://www.flickr.com/photos/ann/42/", "license": "cc-by-2.0",
                               "license_url": "https://creativecommons.org/licenses/by/2.0/", "owner": "Ann",
                               "title": "Peak", "date_taken": "2019-12-31 23:59:00"}
    flickr = item.extra["flickr"]
    assert flickr["size"] == "o" and flickr["size_label"] == "Original" and flickr["download_url"] == "http://h/o.jpg"
    assert (flickr["size_width"], flickr["size_height"], flickr["owner_nsid"]) == (3000, 2000, "1@N01")
    assert flickr["date_upload"] == "2020-01-02T00:00:00Z" and flickr["sizes_listed"] == ["o", "l"]
    # No original allowed: the largest listed size, which may then be too small.
    no_original = record(url_o=None)
    assert make_item(0, no_original, REUSE, 600).location == "http://h/l.jpg"
    assert make_item(0, no_original, REUSE, 1024).error[0] == "too-small"
    assert "1024x683 (Large)" in make_item(0, no_original, REUSE, 1024).error[1]
    assert make_item(0, record(license="0"), REUSE, 1).error[0] == "license-not-allowed"
    assert make_item(0, record(license="0"), (0,), 1).provenance["license"] == "all-rights-reserved"
    assert make_item(0, record(url_o=None, url_l=None), REUSE, 1).error[0] == "no-size"
    assert make_item(0, record(media="video"), REUSE, 1).error[0] == "not-a-photo"
    unknown = make_item(0, record(datetakenunknown="1", title=""), REUSE, 1).provenance
    assert "date_taken" not in unknown and "title" not in unknown


def test_list_lines_name_photos_in_every_published_form():
    assert parse_line("4_51234567890.jpg") == ("51234567890", 4)
    assert parse_line("0_27137578024.mp4") == ("27137578024", 0)
    assert parse_line("51234567890") == ("51234567890", None)
    assert parse_line("https://www.flickr.com/photos/ann/51234567890/in/dateposted/") == ("51234567890", None)
    assert parse_line("some_photo.jpg") is None and parse_line("4_5_6.jpg") is None


def test_ids_are_looked_up_once_each_with_get_sizes_only_where_usable(flickr, tmp_path):
    big = FakePhoto("101", day(2020, 1, 1), license=11, sizes={"o": (4000, 3000), "k": (2048, 1536)})
    no_original = FakePhoto("102", day(2020, 1, 2), license=5, sizes={"k": (2048, 1365), "l": (1024, 683)})
    reserved = FakePhoto("103", day(2020, 1, 3), license=0)
    video = FakePhoto("104", day(2020, 1, 4), media="video")
    fake = flickr([big, no_original, reserved, video])
    listing = tmp_path / "ids.txt"
    listing.write_text("# the paper's list\n11_101.jpg\n4_102.jpg\n\n0_103.jpg\n0_104.mp4\n999.jpg\nnonsense\n101\n")
    journal = Journal(tmp_path / "journal")
    records = list(IdsDiscovery(str(listing), REUSE, lambda: client_for(fake), journal).records())
    items = [make_item(i, r, REUSE, 1000) for i, r in enumerate(records)]
    assert [i.key for i in items] == ["flickr-101", "flickr-102", "flickr-103", "flickr-104", "flickr-999",
                                      "flickr-line-8", "flickr-101"]
    assert [i.error[0] if i.error else None for i in items] == [
        None, None, "license-not-allowed", "not-a-photo", "flickr-not-found", "bad-row", "duplicate-url"]
    assert items[0].extra["flickr"]["size"] == "o" and items[0].provenance["license"] == "cc-by-4.0"
    assert items[0].extra["flickr"]["listed_license"] == "cc-by-4.0"
    assert items[1].extra["flickr"]["size"] == "k" and items[1].location.endswith("/img/102_k.jpg")
    assert items[1].provenance["url"] == "https://www.flickr.com/photos/ansel/102/"
    info = [c["params"]["photo_id"] for c in fake.methods("flickr.photos.getInfo")]
    sizes = [c["params"]["photo_id"] for c in fake.methods("flickr.photos.getSizes")]
    assert info + [c["params"]["photo_id"] for c in fake.calls if c["outcome"] == "api-1"] == [
        "101", "102", "103", "104", "999"]
    assert sizes == ["101", "102"]  # none for the reserved photo, the video, the missing one
    assert journal.cursor()["done"] and journal.cursor()["lines_done"] == 9
    # Replayed on a rerun, with no call at all.
    fake.calls.clear()
    again = list(IdsDiscovery(str(listing), REUSE, lambda: client_for(fake), Journal(tmp_path / "journal")).records())
    assert again == records and fake.calls == []
    listing.write_text("101\n")
    with pytest.raises(DatasetError, match="changed since this run started"):
        list(IdsDiscovery(str(listing), REUSE, lambda: client_for(fake), Journal(tmp_path / "journal")).records())


def test_sources_describe_their_input_and_never_their_credentials(tmp_path):
    listing = tmp_path / "ids.txt"
    listing.write_text("1\n2\n")
    source = FlickrIdsSource(api=ApiConfig(), credentials=Credentials("kkkk-key", "ssss-secret"),
                             state=str(tmp_path / "s"), min_side=256, path=str(listing), licenses=REUSE)
    assert source.count() == 2 and "kkkk" not in repr(source)
    assert "kkkk" not in str(source.describe()) and "ssss" not in str(source.describe())
    assert b"kkkk" not in pickle.dumps(source) and b"ssss" not in pickle.dumps(source)
    with pytest.raises(DatasetError, match="no such file"):
        FlickrIdsSource(api=ApiConfig(), credentials=Credentials("k", "s"), state="", min_side=1,
                        path=str(tmp_path / "none.txt"), licenses=REUSE)
