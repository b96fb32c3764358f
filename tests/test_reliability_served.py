"""Five users of the served dashboard at once, its memory, and the traces their uploads leave."""

from __future__ import annotations

import pytest
from drivers import CHROMIUM
from served_users import MODELS, RSS_RATIO_LIMIT, ServedRun, found_in, serve_users

USERS = 5

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is not installed"),
]


@pytest.fixture(scope="module")
def served(models_dir, tmp_path_factory) -> ServedRun:
    pytest.importorskip("playwright.async_api")
    return serve_users(models_dir, tmp_path_factory.mktemp("served"))


def test_each_user_gets_their_own_image_model_and_outputs(served):
    assert [result.upload.model for result in served.together] == [MODELS[i % 2] for i in range(USERS)]
    wrong = [(r.upload.name, r.upload.model, r.shown, r.expected, r.nearest, r.distance)
             for r in (served.first, *served.together) if not r.correct]
    assert not wrong, wrong


def test_the_server_stays_up_and_its_memory_flat(served):
    assert served.alive
    assert served.rss_ratio <= RSS_RATIO_LIMIT, (served.rss_one, served.rss_all)


def test_uploads_leave_no_trace_on_disk_or_in_the_server_log(served):
    traces = served.traces
    assert traces.files_before > 0 and traces.new_or_changed  # the server log, at least, is seen to change
    assert not traces.holding_upload, traces.holding_upload
    assert not traces.in_server_log, traces.in_server_log


def test_the_trace_search_finds_a_copy(tmp_path):
    needles = {"name": b"probe-1234.png", "bytes": bytes(range(256))}
    path = tmp_path / "copy.bin"
    path.write_bytes(b"x" * (1 << 22) + bytes(range(256)) + b"... probe-1234.png")  # across a chunk boundary
    assert found_in(str(path), needles) == ["bytes", "name"]
