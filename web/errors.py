"""Errors: the one place error answers are built, JSON for the API and ``/healthz``, a friendly
Vietnamese page otherwise, never cached.

Every refusal is ``{"error": {"code": ..., "message": ...}}`` on the API: the engine's
``VnsearchError`` (with its code and status) and Werkzeug's HTTP errors (404, 405, ...) alike.
"""

from __future__ import annotations

from flask import current_app, jsonify, make_response, render_template, request
from werkzeug.exceptions import HTTPException

from search.errors import IndexMissing, VnsearchError

from . import get_settings

REINDEX_COMMAND = "vnsearch reindex samples/"
NO_INDEX_MESSAGE = f"Chưa có chỉ mục tìm kiếm. Người quản trị cần chạy: {REINDEX_COMMAND}"
# Errors are never cached: a shared cache must not keep serving a 404 or a 503 once fixed.
ERROR_CACHE_CONTROL = "no-store"

HTTP_ERROR_TEXT = {
    400: ("Yêu cầu không hợp lệ", "Yêu cầu không hợp lệ."),
    404: ("Không tìm thấy trang", "Không có trang nào ở địa chỉ này."),
    405: ("Phương thức không được hỗ trợ", "Địa chỉ này không hỗ trợ phương thức {method}."),
    413: ("Yêu cầu quá lớn", "Yêu cầu quá lớn."),
    500: ("Đã xảy ra lỗi", "Máy chủ gặp lỗi khi xử lý yêu cầu. Vui lòng thử lại sau."),
    503: ("Dịch vụ tạm thời không khả dụng", "Dịch vụ tạm thời không khả dụng."),
}


def wants_json() -> bool:
    path = request.path
    return path == "/api" or path.startswith("/api/") or path == "/healthz"


def message_of(exc) -> str:
    return str(getattr(exc, "message", None) or exc)


def error_response(
    code: str,
    message: str,
    status: int,
    *,
    title: str | None = None,
    no_index: bool = False,
    headers=None,
):
    """The one place errors are built: JSON for the API, a friendly Vietnamese page otherwise."""
    if wants_json():
        response = jsonify({"error": {"code": code, "message": message}})
    else:
        fallback = HTTP_ERROR_TEXT[400 if status < 500 else 500]
        page = render_template(
            "error.html",
            status=status,
            code=code,
            title=title or HTTP_ERROR_TEXT.get(status, fallback)[0],
            message=message,
            no_index=no_index,
            q=(request.args.get("q") or "")[: get_settings().max_query_chars],
        )
        response = make_response(page)
    response.status_code = status
    response.headers["Cache-Control"] = ERROR_CACHE_CONTROL
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def handle_vnsearch_error(exc: VnsearchError):
    status = int(getattr(exc, "status", 500) or 500)
    code = getattr(exc, "code", None) or "error"
    if isinstance(exc, IndexMissing):
        # The detail names the server's index directory: it goes to the log, not to the world.
        current_app.logger.warning("no index: %s", message_of(exc))
        return error_response(
            code or "no_index",
            NO_INDEX_MESSAGE,
            503,
            title="Chưa có chỉ mục tìm kiếm",
            no_index=True,
        )
    title = "Không tìm thấy bài viết" if status == 404 else None
    return error_response(code, message_of(exc), status, title=title)


def handle_http_exception(exc: HTTPException):
    status = exc.code or 500
    code = (exc.name or "error").lower().replace(" ", "_").replace("'", "")
    title, message = HTTP_ERROR_TEXT.get(status, (None, exc.description or exc.name))
    message = message.format(method=request.method)
    headers = {}
    if status == 405:
        allow = exc.get_response().headers.get("Allow")
        if allow:
            headers["Allow"] = allow
    return error_response(code, message, status, title=title, headers=headers)


def register_error_handlers(app) -> None:
    app.register_error_handler(VnsearchError, handle_vnsearch_error)
    app.register_error_handler(HTTPException, handle_http_exception)
