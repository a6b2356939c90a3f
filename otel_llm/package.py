"""What otel_llm instruments: any one of these is enough (openai >= 3.0 uses httpx2)."""

_instruments_httpx = ("httpx >= 0.23.0",)
_instruments_httpx2 = ("httpx2 >= 2.0.0",)
_instruments_requests = ("requests >= 2.20.0",)
_instruments_aiohttp = ("aiohttp >= 3.8.0",)

_instruments: tuple[str, ...] = ()
_instruments_any = (
    *_instruments_httpx,
    *_instruments_httpx2,
    *_instruments_requests,
    *_instruments_aiohttp,
)
