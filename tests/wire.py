# ruff: noqa: E501
"""Response bodies copied from the wire-format reference, for transport-level tests."""

from __future__ import annotations

NDJSON_CHAT = [
    b'{"model":"qwen3:8b","created_at":"2025-11-03T14:05:39.902113Z","message":{"role":"assistant","content":"","thinking":"The"},"done":false}\n',
    b'{"model":"qwen3:8b","created_at":"2025-11-03T14:05:40.1Z","message":{"role":"assistant","content":"Sunny"},"done":false}\n',
    b'{"model":"qwen3:8b","created_at":"2025-11-03T14:05:40.684301Z","message":{"role":"assistant","content":"","tool_calls":[{"id":"call_k3v9x0qa","function":{"index":0,"name":"get_weather","arguments":{"city":"Tokyo"}}}]},"done":false}\n',
    b'{"model":"qwen3:8b","created_at":"2025-11-03T14:05:40.702245Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":1733529167,"load_duration":61325708,"prompt_eval_count":173,"prompt_eval_duration":201544000,"eval_count":41,"eval_duration":1445861000}\n',
]

CHAT_BODY = (
    b'{"model":"llama3.2","created_at":"2025-11-03T14:06:02.311578Z","message":{"role":"assistant",'
    b'"content":"Hello! How can I help you today?"},"done":true,"done_reason":"stop",'
    b'"total_duration":402712458,"load_duration":21834500,"prompt_eval_count":26,'
    b'"prompt_eval_duration":93215000,"eval_count":10,"eval_duration":179433000}'
)

_P = (
    b'"id":"chatcmpl-82","object":"chat.completion.chunk","created":1762178762,'
    b'"model":"llama3.2","system_fingerprint":"fp_ollama"'
)
SSE_CHAT = [
    b"data: {"
    + _P
    + b',"choices":[{"index":0,"delta":{"role":"assistant","content":"Hello"},"finish_reason":null}]}\n\n',
    b"data: {" + _P + b',"choices":[{"index":0,"delta":{"content":"!"},"finish_reason":null}]}\n\n',
    b"data: {" + _P + b',"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
    b"data: {"
    + _P
    + b',"choices":[],"usage":{"prompt_tokens":26,"completion_tokens":10,"total_tokens":36}}\n\n',
    b"data: [DONE]\n\n",
]

V1_CHAT_BODY = (
    b'{"id":"chatcmpl-417","object":"chat.completion","created":1762178762,"model":"llama3.2",'
    b'"system_fingerprint":"fp_ollama","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"Hello! How can I help you today?"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":26,"completion_tokens":10,"total_tokens":36}}\n'
)

EMBED_BODY = (
    b'{"model":"all-minilm","embeddings":[[0.010071029,-0.0017594862,0.05007221],'
    b'[-0.0098027075,0.06042469,0.025257962]],"total_duration":14143917,'
    b'"load_duration":1019500,"prompt_eval_count":16}'
)
