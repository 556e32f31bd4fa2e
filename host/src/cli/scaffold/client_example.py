"""Talk to a signet gate with the official OpenAI Python SDK.

Run with:   pip install openai && python client_example.py
            (start the gate first, in this directory: signet serve --dev)

Only two things differ from calling a model server directly: the base URL
points at the gate, and every request names an accountable owner in the
X-Commit-Owner header. Settings (environment variables):

  SIGNET_BASE_URL  the gate's OpenAI-compatible base URL
                   (default http://127.0.0.1:8443/v1)
  SIGNET_OWNER     who is accountable for these requests (default human:alice)
  SIGNET_MODEL     model name sent upstream (default gpt-4o-mini; the demo
                   upstream of `signet serve --dev` accepts any name)
  OPENAI_API_KEY   forwarded to the upstream as Authorization, unless the gate
                   has its own upstream key ([upstream] api_key_env)

It runs three steps and exits 0 when each behaved as expected, 1 otherwise
(2 when the gate cannot be reached):
  1. a normal request, with the owner header: answered, with an audit
     correlation id and a signed receipt;
  2. the same request WITHOUT the owner header: refused by the gate (HTTP 403),
     raised by the SDK as openai.PermissionDeniedError;
  3. a streamed request: chunks arrive as they are judged safe; the final
     event carries the receipt.
"""
import os
import sys

try:
    import openai
except ImportError:
    sys.exit("this example needs the official OpenAI Python SDK: pip install openai")

BASE_URL = os.environ.get("SIGNET_BASE_URL", "http://127.0.0.1:8443/v1")
OWNER = os.environ.get("SIGNET_OWNER", "human:alice")
MODEL = os.environ.get("SIGNET_MODEL", "gpt-4o-mini")
API_KEY = os.environ.get("OPENAI_API_KEY") or "not-needed-for-the-demo-upstream"

# The gated client: base URL + owner header. Nothing else changes.
client = openai.OpenAI(
    base_url=BASE_URL,
    api_key=API_KEY,
    default_headers={"X-Commit-Owner": OWNER},
    max_retries=0,
)
# The same client without an owner: the gate must refuse it.
anonymous = openai.OpenAI(base_url=BASE_URL, api_key=API_KEY, max_retries=0)

problems = []


def messages(text):
    return [{"role": "user", "content": text}]


def step_normal_request():
    print("1. normal request, X-Commit-Owner: %s" % OWNER)
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages("Say hello to the gate in one short sentence.")
    )
    completion = raw.parse()
    text = completion.choices[0].message.content or ""
    print("   answer:         %s" % text.strip())
    print("   upstream:       %s" % raw.headers.get("x-signet-upstream", "?"))
    correlation = raw.headers.get("x-signet-correlation-id")
    receipt = raw.headers.get("x-signet-receipt")
    print("   correlation id: %s  (signet audit show %s --audit-log audit.jsonl)" % (correlation, correlation))
    print("   receipt:        %s" % ((receipt[:60] + "...") if receipt else None))
    if not correlation or not receipt:
        problems.append("the answer carried no X-Signet-Correlation-Id / X-Signet-Receipt: is this URL a signet gate?")


def step_refusal_without_owner():
    print("2. the same request WITHOUT an owner header (the gate must refuse it)")
    try:
        anonymous.chat.completions.create(model=MODEL, messages=messages("Who is accountable for this?"))
    except openai.PermissionDeniedError as e:
        # The SDK keeps only the "error" string; the gate's full refusal is the body.
        body = e.response.json()
        print("   refused as expected: caught openai.PermissionDeniedError (HTTP %d)" % e.status_code)
        print("   reason:         %s" % body.get("reason"))
        print("   check / stage:  %s / %s" % (body.get("check", "(hidden: strict errors)"), body.get("stage")))
        print("   correlation id: %s  (the audit entry that records the refusal)" % body.get("correlation_id"))
        return
    problems.append(
        "a request with no owner was answered: the gate is open or in shadow mode "
        "(serve without --shadow; keep owner_resolution with mode = \"enforce\" in signet.toml)"
    )
    print("   UNEXPECTED: the request was answered")


def step_streamed_request():
    print("3. streamed request")
    pieces, receipt = [], None
    stream = client.chat.completions.create(
        model=MODEL, messages=messages("Stream a short greeting, please."), stream=True
    )
    sys.stdout.write("   stream:         ")
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
            sys.stdout.write(chunk.choices[0].delta.content)
            sys.stdout.flush()
        extra = chunk.model_extra or {}
        receipt = extra.get("signet_receipt", receipt)
    print()
    print("   chunks:         %d" % len(pieces))
    print("   receipt on the final event: %s" % ("yes" if receipt else "no"))
    if not pieces:
        problems.append("the stream delivered no text")
    if not receipt:
        problems.append("the stream's final event carried no signet_receipt")


def main():
    print("signet client example -> %s" % BASE_URL)
    print()
    for step in (step_normal_request, step_refusal_without_owner, step_streamed_request):
        try:
            step()
        except openai.APIConnectionError as e:
            print("   cannot reach the gate at %s: %s" % (BASE_URL, e))
            print("   start it in this directory with `signet serve --dev`, or set SIGNET_BASE_URL")
            return 2
        except openai.APIError as e:
            problems.append("%s failed: %s: %s" % (step.__name__, type(e).__name__, e))
            print("   UNEXPECTED: %s: %s" % (type(e).__name__, e))
        print()
    if problems:
        print("%d unexpected result(s):" % len(problems))
        for p in problems:
            print("  - %s" % p)
        return 1
    print("all 3 steps behaved as expected")
    print("next: signet audit tail audit.jsonl   (every decision above is in the log)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
