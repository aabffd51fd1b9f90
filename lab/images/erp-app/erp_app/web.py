"""The FastAPI application: business API, health, metrics, version and home page.

The only module (with ``server``) that imports FastAPI. Handlers that touch the
database are plain ``def`` so Starlette runs them in its thread pool; the
liveness handler is ``async`` on purpose: answering it proves the event loop runs.
"""

import html
import logging
import random
import time
from datetime import UTC, datetime
from decimal import Decimal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, condecimal, conlist, constr

from erp_app import health, metrics, repository
from erp_app.config import Settings
from erp_app.db import Database, DatabaseUnavailable
from erp_app.lifecycle import Lifecycle
from erp_app.migrations import schema_version, target_version

log = logging.getLogger("erp_app")
access_log = logging.getLogger("erp_app.access")

UNMATCHED_ROUTE = "unmatched"  # label for 404s, so random paths add no new series


class Runtime:
    """State shared by the handlers of one process."""

    def __init__(self, settings: Settings, db: Database, lifecycle: Lifecycle) -> None:
        self.settings = settings
        self.db = db
        self.lifecycle = lifecycle
        self.features = repository.Features.for_release(settings.version)
        self.schema: str | None = None  # last schema version seen in the database
        self.requests = metrics.Counter(
            "erp_http_requests_total",
            "HTTP requests answered.",
            ("method", "route", "status"),
        )
        self.durations = metrics.Histogram(
            "erp_http_request_duration_seconds",
            "HTTP request duration in seconds.",
            ("route",),
        )
        self.build_info = metrics.Gauge("erp_build_info", "Release and ERP schema version.", ("version", "schema"))
        self.database_up = metrics.Gauge("erp_database_up", "1 when the last database probe succeeded.")
        self.start_time = metrics.Gauge("erp_process_start_time_seconds", "Process start, Unix time in seconds.")
        self.start_time.set(lifecycle.started_wall)

    def probe(self) -> health.DatabaseProbe:
        """Probe the database and remember what it says about schema and readiness."""
        probe = self.db.probe()
        self.database_up.set(1 if probe.reachable else 0)
        if probe.applied is not None:
            self.schema = schema_version(probe.applied)
        ctx = self.context()
        status, _ = health.document(ctx, health.ready(ctx, probe), "")
        if status == 200:
            # Starts the clock of the fails-after-ready fault.
            self.lifecycle.mark_ready()
        return probe

    def context(self) -> health.Context:
        return health.Context(
            version=self.settings.version,
            fault=self.settings.fault,
            time=_now(),
            uptime=self.lifecycle.uptime(),
            draining=self.lifecycle.draining,
            ready_for=self.lifecycle.ready_for(),
            schema=self.schema,
        )

    def metrics_text(self) -> str:
        self.build_info.replace(1, (self.settings.version, self.schema or "none"))
        return metrics.render(
            [
                self.requests,
                self.durations,
                self.build_info,
                self.database_up,
                self.start_time,
            ]
        )


class MetricsAndAccessLog:
    """ASGI middleware: one log line and the HTTP metrics for every request.

    Pure ASGI instead of BaseHTTPMiddleware, which would buffer responses. The
    route label is the matched route's template (FastAPI puts the route into
    the scope), never the raw path, to keep label cardinality bounded.
    """

    def __init__(self, app, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = 500  # if the app raises before answering

        async def send_and_watch(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_watch)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)
            self.runtime.requests.inc((scope["method"], route, str(status)))
            self.runtime.durations.observe(elapsed, (route,))
            client = (scope.get("client") or ("-",))[0]
            access_log.info(
                "%s %s %s %.1fms route=%s client=%s",
                scope["method"],
                scope["path"],
                status,
                elapsed * 1000,
                route,
                client,
            )


class CustomerIn(BaseModel):
    name: constr(strip_whitespace=True, min_length=1, max_length=200)


class CustomerInWithEmail(CustomerIn):
    email: constr(strip_whitespace=True, max_length=254, regex=r"^[^@\s]+@[^@\s]+$") | None = None


class LineIn(BaseModel):
    description: constr(strip_whitespace=True, min_length=1, max_length=500)
    quantity: condecimal(gt=Decimal(0), max_digits=12, decimal_places=3)
    unit_price: condecimal(ge=Decimal(0), max_digits=12, decimal_places=2)


class InvoiceIn(BaseModel):
    customer_id: int
    lines: conlist(LineIn, min_items=1, max_items=100)


class InvoiceInWithCurrency(InvoiceIn):
    currency: constr(regex=r"^[A-Z]{3}$") = "EUR"


def create_app(runtime: Runtime) -> FastAPI:
    settings = runtime.settings
    features = runtime.features
    # A release parses only the fields its schema has; older releases ignore
    # newer fields (pydantic's default), as a real old build would.
    customer_model = CustomerInWithEmail if features.customer_email else CustomerIn
    invoice_model = InvoiceInWithCurrency if features.invoice_currency else InvoiceIn

    async def startup():
        probe = await run_in_threadpool(runtime.probe)
        if probe.reachable:
            log.info(
                "database reachable; schema %s, this release needs %s",
                runtime.schema,
                target_version(settings.version),
            )
        else:
            log.warning("database not reachable yet (not ready until it is): %s", probe.error)

    app = FastAPI(
        title="ERP reference app",
        version=settings.version,
        docs_url=None,  # Swagger UI loads assets from a CDN; the lab has none
        redoc_url=None,
        on_startup=[startup],
        on_shutdown=[runtime.db.close],
    )
    app.add_middleware(MetricsAndAccessLog, runtime=runtime)

    @app.exception_handler(DatabaseUnavailable)
    async def database_unavailable(request, exc):
        return JSONResponse({"detail": f"database unavailable: {exc}"}, status_code=503)

    @app.get("/", response_class=HTMLResponse)
    def home():
        news = (
            "<p>New in 1.1: invoices carry a currency (ISO 4217, default EUR) and customers an email.</p>"
            if features.invoice_currency
            else ""
        )
        version = html.escape(settings.version)
        return (
            f"<!doctype html><html><head><title>ERP {version}</title></head><body>"
            f"<h1>ERP reference app</h1><p>Version <strong>{version}</strong>, "
            f"schema {html.escape(runtime.schema or 'unknown')}.</p>{news}"
            '<p><a href="/api/customers">Customers</a> · <a href="/api/invoices">Invoices</a> · '
            '<a href="/health">Health</a></p></body></html>'
        )

    @app.get("/version")
    async def version():
        return {
            "version": settings.version,
            "schema": runtime.schema,
            "fault": settings.fault.mode,
            "requires_schema": target_version(settings.version),
        }

    @app.get("/health/live")
    async def live():
        ctx = runtime.context()
        return _health(*health.document(ctx, health.live(ctx), "erp-app liveness: process and event loop answer"))

    @app.get("/health/ready")
    async def ready():
        probe = await run_in_threadpool(runtime.probe)
        ctx = runtime.context()
        return _health(*health.document(ctx, health.ready(ctx, probe), "erp-app readiness: may take traffic"))

    @app.get("/health/database")
    async def database():
        probe = await run_in_threadpool(runtime.probe)
        ctx = runtime.context()
        return _health(
            *health.document(
                ctx,
                health.database(ctx, probe),
                "erp-app database: reachable and writable",
            )
        )

    @app.get("/health")
    async def overall():
        probe = await run_in_threadpool(runtime.probe)
        ctx = runtime.context()
        return _health(*health.document(ctx, health.overall(ctx, probe), "erp-app: all checks"))

    @app.get("/health/metrics")
    async def metrics_endpoint():
        await run_in_threadpool(runtime.probe)
        return Response(runtime.metrics_text(), media_type=metrics.CONTENT_TYPE)

    async def injected_fault():
        if settings.fault.fails_request(random.random()):  # noqa: S311 - fault injection, not security
            raise HTTPException(500, "injected fault 'errors-500'")

    api = APIRouter(prefix="/api", dependencies=[Depends(injected_fault)])

    @api.get("/customers")
    def list_customers(limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0)):
        return runtime.db.run(lambda cur: repository.list_customers(cur, features, limit, offset))

    @api.get("/customers/{customer_id}")
    def get_customer(customer_id: int):
        customer = runtime.db.run(lambda cur: repository.get_customer(cur, features, customer_id))
        if customer is None:
            raise HTTPException(404, f"customer {customer_id} not found")
        return customer

    @api.post("/customers", status_code=201)
    def create_customer(body: customer_model, response: Response):
        email = getattr(body, "email", None)
        customer = runtime.db.run(lambda cur: repository.create_customer(cur, features, body.name, email))
        response.headers["Location"] = f"/api/customers/{customer['id']}"
        return customer

    @api.get("/invoices")
    def list_invoices(
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0),
        customer_id: int | None = None,
    ):
        return runtime.db.run(lambda cur: repository.list_invoices(cur, features, limit, offset, customer_id))

    @api.get("/invoices/{invoice_id}")
    def get_invoice(invoice_id: int):
        invoice = runtime.db.run(lambda cur: repository.get_invoice(cur, features, invoice_id))
        if invoice is None:
            raise HTTPException(404, f"invoice {invoice_id} not found")
        return invoice

    @api.post("/invoices", status_code=201)
    def create_invoice(body: invoice_model, response: Response):
        lines = [repository.Line(line.description, line.quantity, line.unit_price) for line in body.lines]
        currency = getattr(body, "currency", None)
        try:
            invoice = runtime.db.run(
                lambda cur: repository.create_invoice(cur, features, body.customer_id, lines, currency)
            )
        except repository.UnknownCustomer:
            raise HTTPException(422, f"customer {body.customer_id} does not exist") from None
        response.headers["Location"] = f"/api/invoices/{invoice['id']}"
        return invoice

    app.include_router(api)
    return app


def _health(status: int, body: dict) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=health.CONTENT_TYPE)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
