"""Discovery against the fake Flickr: every matching photo found exactly once, past the result
cap by bisecting upload-date windows, with no page asked beyond the cap; the filters honoured;
transient failures retried, permanent ones not; the rate limiter holding; and an interrupted
discovery resuming where it stopped."""

import itertools
import random

import pytest

from curation.sources.flickr.api import (
    ApiConfig,
    Credentials,
    FlickrApiError,
    FlickrAuthError,
    FlickrClient,
    FlickrUnavailable,
    RateLimiter,
    shared_limiter,
)
from curation.sources.flickr.discovery import MAX_PER_PAGE, RESULT_CAP, SearchDiscovery, SearchQuery
from curation.sources.flickr.journal import Journal
from shards import DatasetError

from .fake_flickr import KEY, SECRET, FakePhoto, day

FAST = dict(calls_per_hour=3.6e7, backoff=0.001)


def clustered(n: int, seed: int = 0) -> list[FakePhoto]:
    """Uploads bunched into a few busy days and a thin tail, so bisection goes deep in places;
    every fifth photo is all-rights-reserved and every seventh is about something else."""
    rng = random.Random(seed)
    busy = [day(2015, 3, 1), day(2018, 7, 4), day(2018, 7, 5)]
    photos = []
    for i in range(n):
        upload = rng.choice(busy) + rng.randrange(86400) if i % 3 else rng.randrange(day(2010, 1, 1), day(2022, 1, 1))
        photos.append(FakePhoto(str(10_000 + i), upload, license=0 if i % 5 == 0 else (4, 5, 9, 10, 11)[i % 5],
                                title="city at night" if i % 7 == 0 else "mountain lake", tags=() if i % 7 == 0 else ("alps",)))
    return photos


def discover(fake, tmp_path, query, name="journal", client=None):
    client = client or FlickrClient(Credentials(KEY, SECRET), ApiConfig(endpoint=fake.endpoint, **FAST))
    journal = Journal(tmp_path / name)
    return SearchDiscovery(query, lambda: client, journal, accept=lambda r: True), journal


def expected_ids(photos, query):
    return {p.id for p in photos if p.license in query.licenses and "mountain" in p.title
            and query.min_upload_date <= p.upload <= query.max_upload_date}


def search_pages(fake):
    return [(int(c["params"]["min_upload_date"]), int(c["params"]["max_upload_date"]), int(c["params"]["page"]))
            for c in fake.methods("flickr.photos.search")]


def test_bisection_finds_every_photo_once_with_every_window_under_the_cap(flickr, tmp_path):
    photos = clustered(400)
    fake = flickr(photos, cap=40)
    query = SearchQuery(text="mountain", min_upload_date=day(2009, 1, 1), max_upload_date=day(2023, 1, 1),
                        per_page=10, result_cap=40)
    discovery, journal = discover(fake, tmp_path, query)
    records = list(discovery.records())
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) and set(ids) == expected_ids(photos, query)
    assert len(ids) > 5 * 40  # far more than one query can reach
    cursor = journal.cursor()
    assert cursor["done"] and cursor["bisected"] > 5 and not cursor["truncated"]
    assert cursor["repeats"] > 0  # the fake repeats a photo at every page boundary; none got through
    windows = sorted(cursor["windows"])
    assert all(total <= 40 for _, _, total, _ in windows)
    assert sum(total for _, _, total, _ in windows) == len(ids)
    # The windows tile the range: no gap, no overlap.
    assert windows[0][0] == query.min_upload_date and windows[-1][1] == query.max_upload_date
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(windows))
    # No page past the cap was ever asked for, and each page of a paged window once.
    pages = search_pages(fake)
    assert max(page for *_, page in pages) * 10 <= 40
    assert len(pages) == len(set(pages)) == cursor["calls"]
    # Extras bring everything in the same call: no per-photo calls.
    assert {c["method"] for c in fake.calls} == {"flickr.photos.search"}
    assert all(r["size"]["code"] == "o" and r["license"] in query.licenses for r in records)


def test_the_real_cap_of_4000_at_500_a_page(flickr, tmp_path):
    assert (RESULT_CAP, MAX_PER_PAGE) == (4000, 500)
    assert (SearchQuery(text="x").result_cap, SearchQuery(text="x").per_page) == (4000, 500)
    start = day(2019, 1, 1)
    photos = [FakePhoto(str(5_000_000 + i), start + (i * 7919) % (365 * 86400)) for i in range(9500)]
    fake = flickr(photos, overlap=False)
    query = SearchQuery(text="mountain", min_upload_date=start, max_upload_date=start + 365 * 86400)
    discovery, journal = discover(fake, tmp_path, query)
    ids = [r["id"] for r in discovery.records()]
    assert len(ids) == len(set(ids)) == 9500
    cursor = journal.cursor()
    assert cursor["bisected"] >= 2 and all(total <= 4000 for *_, total, _ in cursor["windows"])
    assert all(page <= 8 for *_, page in search_pages(fake))


def test_filters_reach_the_api_and_the_date_bounds_are_inclusive(flickr, tmp_path):
    lo, hi = day(2016, 1, 1), day(2016, 2, 1)
    photos = [FakePhoto("1", lo - 1), FakePhoto("2", lo), FakePhoto("3", hi), FakePhoto("4", hi + 1),
              FakePhoto("5", lo + 10, license=0), FakePhoto("6", lo + 20, license=2),
              FakePhoto("7", lo + 30, media="video"), FakePhoto("8", lo + 40, title="harbour", tags=("sea",)),
              FakePhoto("9", lo + 50, license=9, tags=("alps", "snow"))]
    fake = flickr(photos)
    query = SearchQuery(text="mountain", min_upload_date=lo, max_upload_date=hi)
    assert {r["id"] for r in discover(fake, tmp_path, query)[0].records()} == {"2", "3", "9"}
    params = fake.methods("flickr.photos.search")[0]["params"]
    assert params["license"] == "4,5,7,8,9,10,11,12" and params["media"] == "photos"
    assert params["sort"] == "date-posted-asc" and "url_o" in params["extras"].split(",")
    tags = SearchQuery(tags=("snow", "alps"), tag_mode="all", licenses=(9,), min_upload_date=lo, max_upload_date=hi)
    assert [r["id"] for r in discover(fake, tmp_path, tags, "tags")[0].records()] == ["9"]
    with pytest.raises(DatasetError, match="--text or --tags"):
        SearchQuery()


def test_one_second_over_the_cap_is_paged_to_the_cap_and_recorded(flickr, tmp_path):
    moment = day(2017, 5, 5)
    photos = [FakePhoto(str(100 + i), moment) for i in range(25)] + [FakePhoto("99", moment + 5)]
    fake = flickr(photos, cap=20)
    query = SearchQuery(text="mountain", min_upload_date=moment, max_upload_date=moment + 9, per_page=10,
                        result_cap=20)
    discovery, journal = discover(fake, tmp_path, query)
    ids = [r["id"] for r in discovery.records()]
    assert len(ids) == len(set(ids)) == 21 and "99" in ids
    assert journal.cursor()["truncated"] == [[moment, moment, 25]]


def test_max_photos_stops_discovery_early(flickr, tmp_path):
    photos = clustered(200)
    fake = flickr(photos, cap=40)
    query = SearchQuery(text="mountain", min_upload_date=day(2009, 1, 1), max_upload_date=day(2023, 1, 1),
                        per_page=10, result_cap=40, max_photos=25)
    discovery, journal = discover(fake, tmp_path, query)
    assert len(list(discovery.records())) == 25 and journal.cursor()["done"]
    assert len(fake.methods("flickr.photos.search")) < 12


def test_an_interrupted_discovery_resumes_where_it_stopped(flickr, tmp_path):
    photos = clustered(300, seed=1)
    fake = flickr(photos, cap=40)
    query = SearchQuery(text="mountain", min_upload_date=day(2009, 1, 1), max_upload_date=day(2023, 1, 1),
                        per_page=10, result_cap=40)
    clean = [r["id"] for r in discover(fake, tmp_path, query, "clean")[0].records()]
    fake.calls.clear()

    discovery, journal = discover(fake, tmp_path, query, "resumed")
    first = list(itertools.islice(discovery.records(), 97))  # stops mid-page, mid-window
    first_pages = search_pages(fake)
    cursor = journal.cursor()
    assert not cursor["done"] and cursor["windows"] and cursor["queue"]
    # A run killed between appending a page and saving its cursor leaves bytes past the cursor.
    with open(journal.log_path, "ab") as f:
        f.write(b'{"id": "half a page that never counted"}\n{"id"')
    fake.calls.clear()
    discovery, journal = discover(fake, tmp_path, query, "resumed")
    resumed = [r["id"] for r in discovery.records()]
    assert resumed[:97] == [r["id"] for r in first]  # replayed from the journal, no call
    assert resumed == clean  # same photos, same order, each once
    second_pages = search_pages(fake)
    assert not set(first_pages) & set(second_pages)  # no page asked twice
    assert journal.log_path.read_bytes().count(b"\n") == len(clean)
    # A finished discovery replays without a single call.
    fake.calls.clear()
    assert [r["id"] for r in discover(fake, tmp_path, query, "resumed")[0].records()] == clean
    assert fake.calls == []


def test_a_journal_of_another_query_is_refused(flickr, tmp_path):
    fake = flickr(clustered(20))
    query = SearchQuery(text="mountain", min_upload_date=day(2009, 1, 1), max_upload_date=day(2023, 1, 1))
    list(discover(fake, tmp_path, query)[0].records())
    other = SearchQuery(text="lake", min_upload_date=day(2009, 1, 1), max_upload_date=day(2023, 1, 1))
    with pytest.raises(DatasetError, match="another query"):
        list(discover(fake, tmp_path, other)[0].records())


def test_transient_failures_are_retried_and_permanent_ones_are_not(flickr, tmp_path):
    fake = flickr(clustered(60), cap=40)
    waits = []
    client = FlickrClient(Credentials(KEY, SECRET), ApiConfig(endpoint=fake.endpoint, calls_per_hour=3.6e7,
                                                              retries=4, backoff=0.5), sleep=waits.append)
    fake.failures = ["http-503", "http-429", "api-105", "drop"]
    query = SearchQuery(text="mountain", min_upload_date=day(2009, 1, 1), max_upload_date=day(2023, 1, 1),
                        per_page=10, result_cap=40)
    ids = [r["id"] for r in discover(fake, tmp_path, query, client=client)[0].records()]
    assert len(ids) == len(set(ids)) == len(expected_ids(fake.photos, query))
    assert [c["outcome"] for c in fake.calls[:5]] == ["http-503", "http-429", "api-105", "drop", "ok"]
    assert len(waits) == 4 and waits[3] > waits[0]  # backing off, doubling (with jitter)

    fake.calls.clear()
    fake.failures = ["http-503"] * 10
    with pytest.raises(FlickrUnavailable, match="5 attempts.*rerun the same command"):
        client.call("flickr.photos.search", text="mountain")
    assert len(fake.calls) == 5

    fake.calls.clear()
    fake.failures = []
    with pytest.raises(FlickrApiError, match="Parameterless searches") as bad:
        client.call("flickr.photos.search")  # bad parameters: permanent
    assert bad.value.code == 3 and len(fake.calls) == 1

    for key, secret, code in [("not-the-key", SECRET, 100), (KEY, "not-the-secret", 96)]:
        fake.calls.clear()
        wrong = FlickrClient(Credentials(key, secret), ApiConfig(endpoint=fake.endpoint, **FAST))
        with pytest.raises(FlickrAuthError, match=f"error {code}") as refused:
            wrong.call("flickr.photos.search", text="mountain")
        assert len(fake.calls) == 1 and key not in str(refused.value) and secret not in str(refused.value)


def test_the_rate_limiter_spaces_calls_and_allows_a_burst():
    now = [0.0]
    limiter = RateLimiter(3600, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    starts = []
    for _ in range(50):
        limiter.acquire()
        starts.append(now[0])
        now[0] += 0.1  # the call itself
    assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(starts))  # 3600 an hour: one a second
    assert starts[-1] == pytest.approx(49.0)
    now[0] = 1000.0  # idle long enough to refill a burst of 5, never more
    burst = RateLimiter(360, burst=5, clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    starts = []
    for _ in range(8):
        burst.acquire()
        starts.append(now[0])
    assert starts[:5] == [1000.0] * 5 and starts[5:] == pytest.approx([1010.0, 1020.0, 1030.0])
    assert ApiConfig().calls_per_hour == 3600


def test_the_rate_limiter_holds_across_clients_and_retries(flickr, tmp_path):
    fake = flickr(clustered(40), cap=40)
    config = ApiConfig(endpoint=fake.endpoint, calls_per_hour=18_000, backoff=0.0)  # one call per 0.2 s
    assert shared_limiter(config) is shared_limiter(config)
    one, two = (FlickrClient(Credentials(KEY, SECRET), config) for _ in range(2))
    fake.failures = ["http-503", "api-105"]
    for client in (one, two, one, two, one, two):
        client.call("flickr.photos.search", text="mountain", per_page=5)
    times = [c["t"] for c in fake.calls]
    assert len(times) == 8  # six calls, two of them retried: every attempt counts
    # Arrivals at the server: any k consecutive calls span at least k - 1 intervals, less up to
    # 0.15 s for a request delayed in flight on a busy machine (an unlimited client would send
    # all eight within a few milliseconds); no burst, across both clients.
    assert all(times[j] - times[i] >= (j - i) * 0.2 - 0.15 for i, j in itertools.combinations(range(8), 2))
