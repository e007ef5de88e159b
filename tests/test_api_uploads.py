"""Hostile and malformed uploads: every one gets a 4xx in the shared error shape, limits are enforced
while the body streams in (413 before the body has been read), and the server keeps serving."""

from __future__ import annotations

import socket
from collections.abc import Iterable

import httpx
import pytest
from api_support import Api, api_fixture, assert_error_shape, tag, tiny
from prometheus_client.parser import text_string_to_metric_families

api = api_fixture()
BOUNDARY = "nestmlboundary"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


def part(name: str, content: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def raw_exchange(port: int, head: bytes, chunks: Iterable[bytes]) -> tuple[int, bytes]:
    """Send ``head`` and ``chunks`` on a plain socket, never finishing the body, then read one response
    (status, body). If the server waited for the whole body, no answer would come (the test times out)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head)
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except OSError:  # the server answered and closed while we were still sending
            pass
        data = b""
        while b"\r\n\r\n" not in data:
            received = sock.recv(65536)
            assert received, f"the connection closed without a complete answer: {data[:200]!r}"
            data += received
        header, _, rest = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":", 1)[1]) for line in header.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(rest) < length:
            received = sock.recv(65536)
            assert received, "the connection closed in the middle of the answer"
            rest += received
        return int(header.split(b" ", 2)[1]), rest[:length]


def test_hostile_requests_get_4xx_in_the_error_shape(api: Api) -> None:
    t = tag()
    api.register_toolchain()
    good_name, good = tiny(t)
    cases: list[tuple[str, dict, int]] = [
        ("json body", {"json": {"files": ["x"]}}, 415),
        ("text body", {"content": b"model x:\n", "headers": {"Content-Type": "text/plain"}}, 415),
        ("no content type", {"content": b"model x:\n"}, 415),
        ("urlencoded form", {"data": {"module": "x_module"}}, 415),
        ("multipart/mixed", {"content": body(part("files", good, good_name)),
                             "headers": {"Content-Type": f"multipart/mixed; boundary={BOUNDARY}"}}, 415),
        ("no boundary", {"content": b"x", "headers": {"Content-Type": "multipart/form-data"}}, 400),
        ("not multipart at all", {"content": b"hello world" * 100, "headers": {"Content-Type": MULTIPART}}, 400),
        ("cut short", {"content": part("files", good, good_name), "headers": {"Content-Type": MULTIPART}}, 400),
        ("empty body", {"content": b"", "headers": {"Content-Type": MULTIPART}}, 400),
        ("no files field", {"content": body(part("module", b"x_module")), "headers": {"Content-Type": MULTIPART}},
         422),
        ("only a closing boundary", {"content": body(), "headers": {"Content-Type": MULTIPART}}, 422),
        ("files as a text field", {"content": body(part("files", good)), "headers": {"Content-Type": MULTIPART}},
         422),
        ("unknown field", {"content": body(part("files", good, good_name), part("evil", b"1")),
                           "headers": {"Content-Type": MULTIPART}}, 422),
        ("field twice", {"content": body(part("files", good, good_name), part("module", b"a_module"),
                                         part("module", b"b_module")), "headers": {"Content-Type": MULTIPART}}, 422),
        ("part without disposition", {"content": f"--{BOUNDARY}\r\nX-Y: z\r\n\r\nabc\r\n--{BOUNDARY}--\r\n".encode(),
                                      "headers": {"Content-Type": MULTIPART}}, 400),
        ("huge field", {"content": body(part("files", good, good_name), part("pairs", b"[" * 100_000)),
                        "headers": {"Content-Type": MULTIPART}}, 422),
        ("huge file name", {"files": [("files", ("a" * 1000 + ".nestml", good))]}, 422),
        ("enormous file name", {"files": [("files", ("a" * 100_000 + ".nestml", good))]}, 400),
        ("path file name", {"files": [("files", ("../../etc/passwd", good))]}, 422),
        ("absolute file name", {"files": [("files", ("/etc/passwd", good))]}, 422),
        ("backslash file name", {"files": [("files", ("..\\..\\x.nestml", good))]}, 422),
        ("NUL in file name", {"content": body(part("files", good, "a\x00b.nestml")),
                              "headers": {"Content-Type": MULTIPART}}, 422),
        ("NUL in content", {"files": [("files", ("a.nestml", b"model a_neuron:\n\x00\n"))]}, 422),
        ("not UTF-8", {"files": [("files", ("a.nestml", b"model a_neuron:\n\xff\xfe\n"))]}, 422),
        ("empty file", {"files": [("files", ("a.nestml", b""))]}, 422),
        ("passwd content", {"files": [("files", ("passwd", b"root:x:0:0:root:/root:/bin/bash\n"))]}, 422),
        # one limit for a file, the upload's (NESTML_REGISTRY_MAX_UPLOAD_BYTES, 5 MiB here)
        ("a file too big", {"files": [("files", ("a.nestml", b"model a_neuron:\n" + b"#" * 5_300_000))]}, 413),
        ("bad pairs JSON", {"files": [("files", (good_name, good))], "data": {"pairs": "[{'neuron': 1}"}}, 422),
        ("bad toolchain", {"files": [("files", (good_name, good))], "data": {"toolchain": "../../etc"}}, 422),
        ("toolchain with NUL", {"files": [("files", (good_name, good))], "data": {"toolchain": "a\x00b"}}, 422),
        ("module with NUL", {"files": [("files", (good_name, good))], "data": {"module": "a\x00_module"}}, 422),
    ]
    for what, kwargs, status in cases:
        response = api.client.post("/v1/builds", **kwargs)
        assert response.status_code == status, (what, response.status_code, response.text[:300])
        assert_error_shape(response, status)
    health = api.client.get("/healthz").json()
    assert (health["status"], health["database"], health["problems"]) == ("ok", "ok", [])


def test_too_many_files_are_refused(api: Api) -> None:
    toolchain = api.register_toolchain()
    files = [tiny(f"{tag()}{i}") for i in range(1000)]
    error = assert_error_shape(api.post_build(files, toolchain=toolchain), 422, "too_many_files")
    assert error["details"]["limit"] == 64 and "64" in error["message"]
    ok = api.post_build(files[:64], toolchain=toolchain)  # the limit itself is fine
    assert ok.status_code == 202, ok.text
    assert api.client.get("/healthz").status_code == 200


def test_announced_size_over_the_limit_is_refused_before_the_body(api: Api) -> None:
    head = (f"POST /v1/builds HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {MULTIPART}\r\n"
            f"Authorization: Bearer {api.local_token}\r\nContent-Length: 10000000000\r\n\r\n").encode()
    status, answer = raw_exchange(api.server.port, head, [f"--{BOUNDARY}\r\n".encode()])
    assert status == 413 and b'"too_large"' in answer
    assert api.client.get("/healthz").status_code == 200


def test_chunked_upload_is_cut_off_at_the_limit(api: Api) -> None:
    limit = api.server.settings.max_upload_bytes
    head = (f"POST /v1/builds HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {MULTIPART}\r\n"
            f"Authorization: Bearer {api.local_token}\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    start = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; filename="big.nestml"\r\n\r\n'.encode()
    block = b"# padding\n" * 6554  # 65540 bytes

    def chunks() -> Iterable[bytes]:
        yield b"%x\r\n%s\r\n" % (len(start), start)
        for _ in range(limit // len(block) + 2):  # just past the limit, and the body never ends
            yield b"%x\r\n%s\r\n" % (len(block), block)

    status, answer = raw_exchange(api.server.port, head, chunks())
    assert status == 413 and b'"too_large"' in answer
    # the same through an HTTP client streaming a generator (no Content-Length)
    def stream() -> Iterable[bytes]:
        yield start
        for _ in range(limit // len(block) + 2):
            yield block

    response = api.client.post("/v1/builds", content=stream(), headers={"Content-Type": MULTIPART})
    assert_error_shape(response, 413, "too_large")
    assert api.client.get("/healthz").status_code == 200


def test_a_body_just_under_the_limit_is_read(api: Api) -> None:
    toolchain = api.register_toolchain()
    # many files whose total is near the limit: read in full, then refused for the number of files only
    t = tag()
    name, content = tiny(t)
    padded = content + b"#" * (900_000 - len(content)) + b"\n"
    response = api.post_build([(f"{i}_{name}", padded.replace(f"tiny_{t}_neuron".encode(), f"t{i}_{t}_neuron".encode()))
                               for i in range(5)], toolchain=toolchain)
    assert response.status_code == 202, response.text[:300]


@pytest.mark.parametrize("path", ["/v1/modules/..%2F..%2Fetc%2Fpasswd", "/v1/modules/..%2F..%2Fetc%2Fpasswd/artifact",
                                  "/v1/modules/%2E%2E/artifact", "/v1/modules/" + "A" * 64 + "g",
                                  "/v1/models/..%2F..%2Fetc%2Fpasswd", "/v1/builds/..%2F1",
                                  "/v1/resolve?model=..%2F..&toolchain=x", "/v1/resolve?model=a&toolchain=..%2F..",
                                  "/v1/resolve?model=a%00b&toolchain=x", "/v1/resolve?toolchain=x",
                                  "/v1/resolve?model=a", "/v1/models/a%00b", "/v1/../../etc/passwd"])
def test_hostile_paths_get_4xx(api: Api, path: str) -> None:
    response = api.client.get(httpx.URL(api.url + path) if "%" not in path else api.url + path)
    assert 400 <= response.status_code < 500
    assert_error_shape(response)


def test_rejections_are_counted_by_reason(api: Api) -> None:
    def rejections() -> dict[str, float]:
        text = api.client.get("/metrics").text
        family = next(f for f in text_string_to_metric_families(text)
                      if f.name == "nestml_registry_upload_rejections")
        return {s.labels["reason"]: s.value for s in family.samples if s.name.endswith("_total")}

    before = rejections()
    api.client.post("/v1/builds", json={})
    api.client.post("/v1/builds", files=[("files", ("a.nestml", b""))])
    after = rejections()
    assert after.get("content_type", 0) == before.get("content_type", 0) + 1
    assert after.get("invalid_input", 0) == before.get("invalid_input", 0) + 1


def test_nestml7_text_is_refused_with_the_upgrade_command(api: Api) -> None:
    text = f'"""\nold\n"""\nneuron old_{tag()}:\n    state:\n        V_m mV = -70 mV\n'.encode()
    error = assert_error_shape(api.post_build([("old.nestml", text)]), 422)
    assert "old.nestml:4: 'neuron old_" in error["message"] and "NESTML 9 writes 'model old_" in error["message"]
    assert "nestml-registry upgrade old.nestml --in-place" in error["message"]
