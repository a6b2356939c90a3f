"""What otel_llm instruments: either httpx or httpx2 is enough (openai >= 3.0 uses httpx2)."""

_instruments_httpx = ("httpx >= 0.23.0",)
_instruments_httpx2 = ("httpx2 >= 2.0.0",)

_instruments: tuple[str, ...] = ()
_instruments_any = (*_instruments_httpx, *_instruments_httpx2)
