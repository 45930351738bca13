"""Drives infermon's proxy with the official Python clients, as a user's program would.

    python sdk_clients.py openai BASE_URL ROUNDS
    python sdk_clients.py ollama HOST ROUNDS

openai: the OpenAI SDK (`openai.OpenAI(base_url=BASE_URL)`) against llama-server: chat
streamed without and with `stream_options.include_usage`, chat not streamed, legacy
completions streamed and not; `max_tokens=16` each, ROUNDS of each kind.
ollama: the Ollama client (`ollama.Client(host=HOST)`): chat and generate, streamed and not,
`num_predict=16` each, ROUNDS of each kind.

Prints one JSON line per request, in the order sent: what the client saw (`kind`, `chunks`
with a token, `usage_chunks` (chunks with no choices that carry usage), `usage_seen` (any
chunk carrying usage), the final `usage` / Ollama counts, `done`).
"""

import json
import sys

MAX_TOKENS = 16


def openai_requests(base_url, rounds):
    import openai

    client = openai.OpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=60)
    messages = [{"role": "user", "content": "Tell me about rivers."}]
    common = dict(
        model="smollm2",
        max_tokens=MAX_TOKENS,
        temperature=0,
        extra_body={"ignore_eos": True},
    )

    def streamed(kind, stream):
        seen = {"kind": kind, "chunks": 0, "usage_chunks": 0, "usage_seen": False, "usage": None, "done": False}
        for chunk in stream:
            if chunk.usage is not None:
                seen["usage_seen"] = True
                seen["usage"] = chunk.usage.model_dump()
                if not chunk.choices:
                    seen["usage_chunks"] += 1
            for c in chunk.choices:
                text = c.delta.content if kind.startswith("chat") else c.text
                if text:
                    seen["chunks"] += 1
                if c.finish_reason is not None:
                    seen["done"] = True
        return seen

    def whole(kind, resp):
        c = resp.choices[0]
        text = c.message.content if kind.startswith("chat") else c.text
        return {
            "kind": kind,
            "chunks": 1 if text else 0,
            "usage_chunks": 0,
            "usage_seen": resp.usage is not None,
            "usage": resp.usage.model_dump() if resp.usage else None,
            "done": c.finish_reason is not None,
        }

    for _ in range(rounds):
        yield streamed(
            "chat_stream",
            client.chat.completions.create(messages=messages, stream=True, **common),
        )
        yield streamed(
            "chat_stream_usage",
            client.chat.completions.create(
                messages=messages, stream=True, stream_options={"include_usage": True}, **common
            ),
        )
        yield whole("chat", client.chat.completions.create(messages=messages, **common))
        yield streamed(
            "completions_stream",
            client.completions.create(prompt="Rivers are", stream=True, **common),
        )
        yield whole("completions", client.completions.create(prompt="Rivers are", **common))


def ollama_requests(host, rounds):
    import ollama

    client = ollama.Client(host=host, timeout=60)
    messages = [{"role": "user", "content": "Tell me about rivers."}]
    options = {"num_predict": MAX_TOKENS}

    def seen_of(kind, parts):
        seen = {"kind": kind, "chunks": 0, "usage_chunks": 0, "usage_seen": False, "usage": None, "done": False}
        for p in parts:
            text = p.message.content if kind.startswith("chat") else p.response
            if text:
                seen["chunks"] += 1
            if p.done:
                seen["done"] = True
                seen["usage_seen"] = True
                seen["usage"] = {"prompt_tokens": p.prompt_eval_count, "completion_tokens": p.eval_count}
        if not kind.endswith("_stream"):
            seen["chunks"] = min(seen["chunks"], 1)
        return seen

    for _ in range(rounds):
        yield seen_of(
            "chat_stream",
            client.chat(model="mock", messages=messages, stream=True, options=options),
        )
        yield seen_of("chat", [client.chat(model="mock", messages=messages, options=options)])
        yield seen_of(
            "generate_stream",
            client.generate(model="mock", prompt="Rivers are", stream=True, options=options),
        )
        yield seen_of("generate", [client.generate(model="mock", prompt="Rivers are", options=options)])


def main():
    which, target, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    gen = openai_requests if which == "openai" else ollama_requests
    for seen in gen(target, rounds):
        print(json.dumps(seen), flush=True)


if __name__ == "__main__":
    main()
