"""Bad input of every shape against the running server: answered, never a 5xx."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hostkit import MODEL_NAME
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "bot", 3]), "content": json_values}
)
fields = {
    "model": st.sampled_from([MODEL_NAME, "other", "", 5]),
    "prompt": st.one_of(
        st.text(max_size=60), st.lists(st.text(max_size=10), max_size=3), json_values
    ),
    "messages": st.one_of(st.lists(message, max_size=3), json_values),
    "max_tokens": st.one_of(st.integers(-3, 6), st.integers(), st.floats(), st.text(max_size=3)),
    "temperature": st.one_of(st.floats(allow_nan=True), st.integers(-1, 3), st.none()),
    "top_p": st.one_of(st.floats(-1, 2), st.none()),
    "n": st.integers(-1, 3),
    "stop": st.one_of(st.text(max_size=3), st.lists(st.text(max_size=3), max_size=6), json_values),
    "seed": st.one_of(st.integers(), st.none()),
    "stream": st.one_of(st.booleans(), json_values),
}
bodies = st.one_of(
    st.fixed_dictionaries({}, optional=fields),
    json_values,
    st.binary(max_size=80).map(lambda b: b),
)


def test_no_input_makes_a_5xx(start_host: Any) -> None:
    host = start_host(max_tokens_limit=4, max_prompt_tokens=64)
    client = httpx.Client(base_url=host.url, timeout=60)

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        path=st.sampled_from(["/v1/completions", "/v1/chat/completions"]),
        body=bodies,
    )
    def check(path: str, body: Any) -> None:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = client.post(path, content=content, headers={"content-type": "application/json"})
        assert response.status_code < 500, (body, response.text)
        if response.status_code >= 400:
            assert response.json()["error"]["message"]

    try:
        check()
    finally:
        client.close()
    assert host.server.started and host.thread.is_alive()
