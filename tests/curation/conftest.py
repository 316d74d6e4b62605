"""Curation fixtures: a misbehaving web server on 127.0.0.1, and one real Ray per session."""

from __future__ import annotations

import socket

import pytest

from .corpus import bad_files, good_cases
from .image_server import ImageServer


@pytest.fixture(scope="session")
def corpus():
    good = good_cases()
    bad = bad_files()
    return good, bad


@pytest.fixture
def image_server(corpus):
    good, bad = corpus
    server = ImageServer({**{k: v[0] for k, v in good.items()}, **{k: v[0] for k, v in bad.items()}})
    yield server
    server.stop()


@pytest.fixture
def refused_url():
    """A URL on a port that nothing listens on."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/img/x.jpg"


@pytest.fixture(scope="package")
def ray_session():
    """One real Ray for the curation tests, stopped when they are done: the rest of the suite
    (torch training) should not share the machine with an idle cluster. Private ("local"), as the
    CLI's: never the cluster RAY_ADDRESS names or `ray start` left recorded in /tmp/ray."""
    import ray

    ray.init(address="local", num_cpus=2, object_store_memory=100 * 2**20, include_dashboard=False,
             log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def flickr():
    """`start(photos, **kw) -> FakeFlickr`: fake Flickr REST servers, stopped after the test."""
    from .fake_flickr import FakeFlickr

    fakes = []

    def start(photos, **kw):
        fakes.append(FakeFlickr(photos, **kw))
        return fakes[-1]

    yield start
    for fake in fakes:
        fake.stop()
