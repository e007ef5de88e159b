"""Reading a ``multipart/form-data`` build upload from the request stream, within limits.

The body is parsed while it arrives (python-multipart's streaming parser), so nothing beyond the
limits is ever held: a Content-Length over the limit is refused before the body is read, and a body
without one (chunked) or with a wrong one is cut off as soon as it passes the limit. The number of
files, the size of the other fields and of part headers are checked as their parts begin.
File names are kept only as display names (``nestml_registry.compiler.sources.display_name`` runs later); they are
never used as paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from nestml_registry.service.api.errors import ApiError

FILE_FIELD = "files"
TEXT_FIELDS = ("module", "pairs", "suffix", "weight_variables", "delay_variables", "toolchain", "retry", "breaking")
MAX_FIELD_BYTES = 64 * 1024
MAX_PART_HEADER_BYTES = 16 * 1024
MAX_BOUNDARY = 200
MAX_EXTRA_PARTS = 16


@dataclass
class Upload:
    files: list[tuple[str, bytes]] = field(default_factory=list)  # (name as sent, content)
    fields: dict[str, str] = field(default_factory=dict)


class Rejected(ApiError):
    """An upload refused; ``reason`` labels the rejection metric."""

    def __init__(self, status: int, code: str, message: str, reason: str, details: object = None) -> None:
        super().__init__(status, code, message, details)
        self.reason = reason


def too_large(limit: int) -> Rejected:
    return Rejected(413, "too_large", f"the upload is larger than {limit} bytes, the most this registry accepts in one "
                    "request: send fewer or smaller files (the limit is NESTML_REGISTRY_MAX_UPLOAD_BYTES)",
                    "too_large", {"limit": limit})


def _boundary(content_type: str | None) -> bytes:
    mime, params = parse_options_header(content_type or "")
    if mime != b"multipart/form-data":
        raise Rejected(415, "unsupported_media_type",
                       f"POST /v1/builds takes multipart/form-data, not {mime.decode('latin-1') or 'no content type'}: "
                       "send the .nestml files as 'files' parts (e.g. curl -F files=@izh.nestml URL/v1/builds)",
                       "content_type")
    boundary = params.get(b"boundary", b"")
    if not boundary or len(boundary) > MAX_BOUNDARY:
        raise Rejected(400, "bad_request", "the multipart/form-data content type has no valid boundary parameter: "
                       "let your HTTP client build the multipart body", "malformed")
    return boundary


def check_content_length(request: Request, limit: int) -> None:
    """Refuse a body announced larger than ``limit`` before reading any of it."""
    raw = request.headers.get("content-length")
    if raw is None:
        return
    try:
        announced = int(raw)
    except ValueError:
        raise Rejected(400, "bad_request", f"invalid Content-Length {raw[:40]!r}: send the body's size in bytes",
                       "malformed") from None
    if announced > limit:
        raise too_large(limit)


class _Collector:
    """The parser's callbacks: assemble parts, checking each against its limit."""

    def __init__(self, max_files: int) -> None:
        self.max_files = max_files
        self.upload = Upload()
        self.ended = False
        self._headers: dict[str, str] = {}
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._header_bytes = 0
        self._name: str | None = None
        self._filename: str | None = None
        self._data = bytearray()
        self._parts = 0

    def callbacks(self) -> Any:  # multipart's MultipartCallbacks
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field,
                "on_header_value": self.header_value, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
                "on_part_end": self.part_end, "on_end": self.end}

    def part_begin(self) -> None:
        self._parts += 1
        if self._parts > self.max_files + MAX_EXTRA_PARTS:
            raise Rejected(422, "too_many_parts", f"the upload has more than {self._parts - 1} parts: send at most "
                           f"{self.max_files} files and each other field once", "too_many_files")
        self._headers, self._header_bytes, self._data = {}, 0, bytearray()
        self._name = self._filename = None

    def _count_header(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > MAX_PART_HEADER_BYTES:
            raise Rejected(422, "invalid_input", f"a part's headers are longer than {MAX_PART_HEADER_BYTES} bytes "
                           "(a huge file name?): give the files short names", "malformed")

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._header_field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._count_header(end - start)
        self._header_value += data[start:end]

    def header_end(self) -> None:
        self._headers[self._header_field.decode("latin-1").strip().lower()] = self._header_value.decode("latin-1")
        self._header_field, self._header_value = bytearray(), bytearray()

    def headers_finished(self) -> None:
        disposition, params = parse_options_header(self._headers.get("content-disposition"))
        name = params.get(b"name")
        if disposition != b"form-data" or name is None:
            raise Rejected(400, "bad_request", "a part of the upload has no 'Content-Disposition: form-data; "
                           "name=...' header: let your HTTP client build the multipart body", "malformed")
        self._name = name.decode("utf-8", errors="replace")
        filename = params.get(b"filename")
        self._filename = None if filename is None else filename.decode("utf-8", errors="replace")
        if self._name == FILE_FIELD:
            if len(self.upload.files) >= self.max_files:
                raise Rejected(422, "too_many_files", f"more than {self.max_files} files in one build: one module "
                               f"takes at most {self.max_files} .nestml files; split them into several builds",
                               "too_many_files", {"limit": self.max_files})
            if self._filename is None:
                raise Rejected(422, "invalid_input", "each 'files' part must be a file with a file name (e.g. "
                               "curl -F files=@izh.nestml): the name is shown in diagnostics", "invalid_field")
        elif self._name in TEXT_FIELDS:
            if self._name in self.upload.fields:
                raise Rejected(422, "invalid_input", f"the field {self._name!r} is given twice: give it once",
                               "invalid_field")
        else:
            shown = self._name[:60]
            raise Rejected(422, "invalid_input", f"unknown form field {shown!r}: POST /v1/builds takes 'files' "
                           f"(one or more) and optionally {', '.join(TEXT_FIELDS)}", "invalid_field")

    def part_data(self, data: bytes, start: int, end: int) -> None:
        self._data += data[start:end]
        if self._name != FILE_FIELD and len(self._data) > MAX_FIELD_BYTES:
            raise Rejected(422, "invalid_input", f"the field {self._name!r} is longer than {MAX_FIELD_BYTES} bytes",
                           "invalid_field")

    def part_end(self) -> None:
        if self._name == FILE_FIELD:
            self.upload.files.append((self._filename or "", bytes(self._data)))
        elif self._name is not None:
            try:
                self.upload.fields[self._name] = self._data.decode("utf-8")
            except UnicodeDecodeError:
                raise Rejected(422, "invalid_input", f"the field {self._name!r} is not UTF-8 text",
                               "invalid_field") from None
        self._data = bytearray()

    def end(self) -> None:
        self.ended = True


async def read_upload(request: Request, max_bytes: int, max_files: int) -> Upload:
    """The files and fields of a build upload; raises :class:`Rejected` (an ApiError) when refused."""
    boundary = _boundary(request.headers.get("content-type"))
    check_content_length(request, max_bytes)
    collector = _Collector(max_files)
    parser = MultipartParser(boundary, collector.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_bytes:
                raise too_large(max_bytes)
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        hint = " (a huge file name?)" if "header" in str(exc).lower() else ""
        raise Rejected(400, "bad_request", f"the multipart body is malformed: {exc}{hint}; let your HTTP client "
                       "build it, and give the files short names", "malformed") from None
    except ClientDisconnect:
        raise Rejected(400, "bad_request", "the client went away before the upload was complete", "disconnected") \
            from None
    if not collector.ended:
        raise Rejected(400, "bad_request", "the multipart body ended before its closing boundary: the upload was "
                       "cut short; send it again", "malformed")
    if not collector.upload.files:
        raise Rejected(422, "invalid_input", "no files: send one or more .nestml files as 'files' parts (e.g. curl "
                       "-F files=@izh.nestml URL/v1/builds)", "no_files")
    return collector.upload
