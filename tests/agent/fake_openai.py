"""A scripted OpenAI-compatible chat server on 127.0.0.1 (real HTTP, the real wire format).

It stands in for a cloud LLM: each POST /v1/chat/completions pops the next scripted answer
(a content string, or ``("sleep", seconds)`` to exercise timeouts) and records the request.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# What a server takes: every form (a JSON schema, tools, JSON mode), or less, as real servers do.
REFUSES = {
    "all": (),
    "no_json_schema": ("json_schema",),  # JSON mode and tools, no schema (older vLLM, many proxies)
    "tools_only": ("json_schema", "json_object"),  # tool calling only
    "json_mode_only": ("json_schema", "tools"),  # JSON mode only
    "text_only": ("json_schema", "json_object", "tools"),  # plain chat (a bare llama.cpp build)
}


class FakeOpenAI:
    def __init__(self, answers: list, behaviour: str = "all"):
        self.answers = list(answers)
        self.requests: list[dict] = []
        self.rejected: list[str] = []  # the forms it answered 400 to
        self.refuses = REFUSES[behaviour]
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                form = (body.get("response_format") or {}).get("type") or (
                    "tools" if body.get("tools") else ""
                )
                if form and form in outer.refuses:
                    outer.rejected.append(form)
                    return self._send(
                        400,
                        {"error": {"message": f"{form} is not supported", "type": "invalid_request_error"}},
                    )
                outer.requests.append(body)
                answer = outer.answers.pop(0) if outer.answers else '{"refused": "script exhausted"}'
                if isinstance(answer, tuple) and answer[0] == "sleep":
                    time.sleep(answer[1])
                    answer = '{"refused": "too late"}'
                message = {"role": "assistant", "content": answer}
                if body.get("tools"):  # the answer as a call of the one tool offered
                    name = body["tools"][0]["function"]["name"]
                    call = {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": name, "arguments": answer},
                    }
                    message = {"role": "assistant", "content": None, "tool_calls": [call]}
                payload = {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "fake"),
                    "choices": [
                        {
                            "index": 0,
                            "message": message,
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                }
                self._send(200, payload)

            def _send(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
