"""Drop-in test: existing OpenAI / Anthropic SDK code works through the gate.

Run with: python dropin.py UPSTREAM_URL GATE_URL
(the e2e test tests/tests/sdk_dropin.rs starts both and runs this with the
venv made by .ci/setup-venv.sh). The "direct" and "gated" clients differ
only in base URL and one header (X-Commit-Owner). Prints one line per case
and "N passed, M failed"; exits 1 on any failure.
"""
import sys
import traceback

import anthropic
import openai

UPSTREAM, GATE = sys.argv[1], sys.argv[2]
OWNER = {"X-Commit-Owner": "human:sdk-test"}

oa_direct = openai.OpenAI(base_url=UPSTREAM + "/v1", api_key="sk-test")
oa_gate = openai.OpenAI(base_url=GATE + "/v1", api_key="sk-test", default_headers=OWNER)
oa_no_owner = openai.OpenAI(base_url=GATE + "/v1", api_key="sk-test", max_retries=0)
an_direct = anthropic.Anthropic(base_url=UPSTREAM, api_key="sk-ant-test")
an_gate = anthropic.Anthropic(base_url=GATE, api_key="sk-ant-test", default_headers=OWNER)
an_no_owner = anthropic.Anthropic(base_url=GATE, api_key="sk-ant-test", max_retries=0)

results = []


def case(fn):
    try:
        fn()
        results.append((fn.__name__, None))
    except Exception:  # noqa: BLE001 - report every failure
        results.append((fn.__name__, traceback.format_exc()))
    return fn


def msgs(text):
    return [{"role": "user", "content": text}]


def oa_text(client, text):
    r = client.chat.completions.create(model="demo", messages=msgs(text))
    return r.choices[0].message.content


def oa_stream_text(client, text):
    out = []
    for chunk in client.chat.completions.create(model="demo", messages=msgs(text), stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            out.append(chunk.choices[0].delta.content)
    return "".join(out)


@case
def openai_unary_matches_direct():
    assert oa_text(oa_gate, "hello gate") == oa_text(oa_direct, "hello gate")


@case
def openai_stream_matches_direct():
    assert oa_stream_text(oa_gate, "stream me please") == oa_stream_text(oa_direct, "stream me please")


@case
def openai_refusal_raises_permission_denied():
    try:
        oa_text(oa_no_owner, "hi")
    except openai.PermissionDeniedError as e:
        assert e.status_code == 403
        # The SDK unwraps the "error" key (a string here); the full refusal is the response body.
        body = e.response.json()
        assert body["check"] == "owner_resolution", body
        assert e.response.headers.get("x-signet-correlation-id") == body["correlation_id"]
        return
    raise AssertionError("no PermissionDeniedError")


@case
def openai_mid_stream_abort_raises_api_error():
    got = []
    try:
        for chunk in oa_gate.chat.completions.create(
            model="demo", messages=msgs("chunks:6 marker_at:4 leak:SECRET//NOFORN"), stream=True
        ):
            if chunk.choices and chunk.choices[0].delta.content:
                got.append(chunk.choices[0].delta.content)
    except openai.APIError as e:
        assert "signet aborted this stream" in str(e), str(e)
        assert "".join(got) == "part 1 part 2 part 3 ", got
        return
    raise AssertionError("no APIError; got %r" % got)


@case
def openai_tool_calls_unary_and_stream():
    text = 'tool:lookup {"q": 7} tool:drop_table {"table": "users"}'
    r = oa_gate.chat.completions.create(model="demo", messages=msgs(text))
    calls = r.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["lookup"], calls
    assert r.model_extra["signet"]["refused_tool_calls"][0]["name"] == "drop_table"
    acc = {}
    for chunk in oa_gate.chat.completions.create(model="demo", messages=msgs(text), stream=True):
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            cur = acc.setdefault(tc.index, {"name": "", "args": ""})
            cur["name"] += (tc.function.name or "") if tc.function else ""
            cur["args"] += (tc.function.arguments or "") if tc.function else ""
    assert list(acc.values()) == [{"name": "lookup", "args": '{"q":7}'}], acc


@case
def anthropic_unary_matches_direct():
    a = an_gate.messages.create(model="demo", max_tokens=50, messages=msgs("hello claude"))
    b = an_direct.messages.create(model="demo", max_tokens=50, messages=msgs("hello claude"))
    assert a.content[0].text == b.content[0].text


@case
def anthropic_stream_matches_direct():
    def text(client):
        with client.messages.stream(model="demo", max_tokens=50, messages=msgs("stream it")) as s:
            return "".join(s.text_stream)
    assert text(an_gate) == text(an_direct)


@case
def anthropic_refusal_raises_permission_denied():
    try:
        an_no_owner.messages.create(model="demo", max_tokens=10, messages=msgs("hi"))
    except anthropic.PermissionDeniedError as e:
        assert e.status_code == 403
        return
    raise AssertionError("no PermissionDeniedError")


@case
def anthropic_mid_stream_abort_raises_api_error():
    got = []
    try:
        with an_gate.messages.stream(
            model="demo", max_tokens=50, messages=msgs("chunks:6 marker_at:4 leak:SECRET//NOFORN")
        ) as s:
            for t in s.text_stream:
                got.append(t)
    except anthropic.APIError as e:
        assert "signet aborted this stream" in str(e), str(e)
        assert "".join(got) == "part 1 part 2 part 3 ", got
        return
    raise AssertionError("no APIError; got %r" % got)


@case
def anthropic_tool_use_stream():
    text = 'tool:lookup {"q": 7} tool:drop_table {"table": "users"}'
    with an_gate.messages.stream(model="demo", max_tokens=50, messages=msgs(text)) as s:
        final = s.get_final_message()
    tools = [b for b in final.content if b.type == "tool_use"]
    assert [(t.name, t.input) for t in tools] == [("lookup", {"q": 7})], tools


failed = [(n, tb) for n, tb in results if tb]
for name, tb in results:
    print(("PASS " if tb is None else "FAIL ") + name)
    if tb:
        print(tb)
print("%d passed, %d failed" % (len(results) - len(failed), len(failed)))
sys.exit(1 if failed else 0)
