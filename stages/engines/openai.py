"""The `openai` generation engine: any OpenAI-compatible server (vLLM serve, SGLang, `transformers serve`).

Raw prompt text goes to the legacy `/completions` endpoint through the maintained
`openai` client (`pip install 'rlt[openai]'`): async requests, at most
`engine.concurrency` in flight, `engine.timeout` seconds each, `engine.retries`
retries with the client's exponential backoff (connection errors, 408, 429, 5xx).

    engine = make_engine(EngineConfig(name="openai", base_url="http://127.0.0.1:8000/v1"), "models/teacher")

- The samples of one prompt (repeated prompts and `n`) are asked for in ONE request
  with `n`: vLLM and SGLang then share the prompt's KV cache across them. A server
  that answers fewer choices than asked (`transformers serve` ignores `n`) is
  detected and the missing samples are requested one by one from then on.
- Seeded per request: sample k of the prompt at position i has the seed
  derive_seed(seed, i, k); a request for n samples carries the seed of its first
  sample, and the one-by-one fallback each sample's own. The same call therefore
  reproduces the same rows on a server that honors seeds. Greedy (temperature 0)
  asks for one sample and repeats it: every sample of a greedy prompt is the
  same text.
- The k samples of a prompt are k draws: at temperature > 0, a reply whose n
  choices are all the same text is checked by drawing the other samples one by
  one with their own seeds. When those differ, the server derives every choice
  from the request's seed (reported for SGLang, sgl-project/sglang#28805): one
  warning names it, and every later prompt gets one seeded request per sample.
  When they are the same too, the samples were the same by chance and `n` stays.
- The request asks the server to keep special tokens (`skip_special_tokens:
  false`, vLLM and SGLang) so tags flagged special survive; a server that
  refuses unknown fields (`transformers serve`: HTTP 422) gets requests without
  it. A completion that ends with finish_reason "stop" but without its end tag
  is warned about once (formats.warn_if_tags_dropped).
- A choice's `finish_reason` decides whether it was cut off: "length" (the server's
  token limit) marks it truncated, whatever it said before (base.make_completion).
The API key is read from the environment variable *named* by `engine.api_key_env`
and never written anywhere; credentials in `engine.base_url` (`http://user:pw@host/v1`,
`?api_key=...`) are used in requests only, never written or shown (stages/secrets.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections import defaultdict

from stages import secrets
from stages.engines.base import (
    Completion,
    Engine,
    EngineConfig,
    check_sampling,
    cut_at_stop,
    derive_seed,
    make_completion,
    valid_text,
)
from stages.errors import UserError
from stages.method.views import warn_if_tags_dropped

log = logging.getLogger(__name__)
KEEP_SPECIAL = {"skip_special_tokens": False, "spaces_between_special_tokens": False}


def _openai():
    try:
        import openai
    except ImportError:
        raise UserError("the openai engine needs the openai client: pip install 'rlt[openai]'") from None
    for name in ("openai", "httpx", "httpx2"):  # per-retry and per-request INFO lines: the engine reports failures
        logging.getLogger(name).setLevel(logging.WARNING)
    return openai


class OpenAIEngine(Engine):
    """Raw-text completions from an OpenAI-compatible server (see the module docstring)."""

    def __init__(self, cfg: EngineConfig, model: str):
        from stages.models.loading import load_tokenizer

        self._api = _openai()
        self.shown = secrets.redact_url(cfg.base_url)  # what messages say: never its credentials
        if not cfg.base_url.startswith(("http://", "https://")):
            raise UserError(f"engine.base_url must start with http:// or https://, got {self.shown!r}")
        self.url = secrets.reveal(cfg.base_url)
        if self.url is None:
            raise UserError(f"engine.base_url {self.shown} was recorded without its credentials ({secrets.SHOWN}); "
                            "give the URL with them again")
        self.cfg, self.model_name = cfg, cfg.api_model or model
        self.tokenizer = load_tokenizer(model, trust_remote_code=cfg.trust_remote_code)
        self.n_supported: bool | None = None  # does the server return `n` distinct draws? (None: not seen yet)
        self.extra: dict = dict(KEEP_SPECIAL)  # dropped when the server refuses unknown fields
        self._probe()

    def _client_kw(self) -> dict:
        base, query = secrets.split_query(self.url)  # the client appends paths to the base: a query goes apart
        return {"base_url": base, "default_query": query or None,
                "api_key": os.environ.get(self.cfg.api_key_env) or "EMPTY",
                "timeout": self.cfg.timeout, "max_retries": self.cfg.retries}

    def _probe(self) -> None:
        """GET {base_url}/models so an unreachable server fails before any work starts."""
        api = self._api
        try:
            with api.OpenAI(**{**self._client_kw(), "timeout": min(self.cfg.timeout, 30.0)}) as client:
                client.models.list()
        except api.APIStatusError:
            return  # it answers; the completions request reports what is wrong
        except api.APIConnectionError as e:
            reason = secrets.redact(str(getattr(e, "__cause__", None) or e))
            raise UserError(f"cannot reach the server at {self.shown} ({reason}); "
                            "start it or fix --base-url") from None

    def generate(self, prompts, *, n=1, max_new_tokens, temperature, top_p=1.0, seed=0, stop=None):
        check_sampling(n, max_new_tokens, temperature, top_p)
        where: dict[str, list[int]] = defaultdict(list)  # unique prompt -> its positions, first seen first
        for i, p in enumerate(prompts):
            where[p].append(i)
        base = {"model": self.model_name, "max_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}
        if stop:
            base["stop"] = list(stop)
        jobs = []
        for p, pos in where.items():  # sample k of position i has seed derive_seed(seed, i, k)
            seeds = [derive_seed(seed, i, k) for i in pos for k in range(n)]
            jobs.append(({**base, "prompt": p, "seed": seeds[0]}, seeds))
        samples = asyncio.run(self._run(jobs, stop))
        out: list[list[Completion]] = [[] for _ in prompts]
        for (p, pos), got in zip(where.items(), samples):
            for r, i in enumerate(pos):
                out[i] = got[r * n:(r + 1) * n]
        return out

    async def _run(self, jobs: list[tuple[dict, list[int]]], stop) -> list[list[Completion]]:
        sem = asyncio.Semaphore(self.cfg.concurrency)
        async with self._api.AsyncOpenAI(**self._client_kw()) as client:
            return await asyncio.gather(*(self._samples(client, sem, body, seeds, stop) for body, seeds in jobs))

    async def _samples(self, client, sem, body: dict, seeds: list[int], stop) -> list[Completion]:
        """len(seeds) samples of one prompt: one request with n, completed one by one (sample k with
        seeds[k]) where the server ignores `n`."""
        m = len(seeds)
        if body["temperature"] == 0:  # greedy: every sample is the same text
            first = (await self._request(client, sem, body, 1, stop))[0]
            return [dataclasses.replace(first) for _ in range(m)]
        asked_n = m > 1 and self.n_supported is not False
        got = await self._request(client, sem, body, m if asked_n else 1, stop)
        if asked_n and len(got) < m:
            if self.n_supported is not False:
                log.info("the server ignores `n`: requesting samples one at a time")
            self.n_supported = False
        repeated = asked_n and len(got) >= m and len({c.text for c in got[:m]}) == 1
        got = got[:1] if repeated else got[:m]  # a repeated choice is one draw: draw the others with their seeds
        rest = [self._request(client, sem, {**body, "seed": seeds[k]}, 1, stop) for k in range(len(got), m)]
        for more in await asyncio.gather(*rest):
            got += more
        if repeated and len({c.text for c in got}) > 1:
            self._shares_one_seed(m, body["temperature"])
        elif asked_n and self.n_supported is None and len(got) >= m:
            self.n_supported = True
        return got[:m]

    def _shares_one_seed(self, m: int, temperature: float) -> None:
        """The n choices of a request were one draw (its own seeds draw other texts): one request per sample."""
        if self.n_supported is not False:
            log.warning("%s returned %d identical choices for one request at temperature %s, and other texts for "
                        "the same samples seeded one by one: it derives every choice from the request's seed; "
                        "requesting each sample with its own seed from now on", self.shown, m, temperature)
        self.n_supported = False

    async def _request(self, client, sem, body: dict, n: int, stop) -> list[Completion]:
        api, asked = self._api, {**body, "n": n} if n > 1 else body
        async with sem:
            for _ in range(2):
                sent = self.extra
                try:
                    resp = await client.completions.create(**asked, extra_body=sent or None)
                    break
                except api.UnprocessableEntityError as e:
                    if not sent or not any(k in f"{e} {_short(e)}" for k in sent):  # not about the fields we added
                        raise UserError(f"{self.shown} refused the request ({_short(e)})") from None
                    if self.extra:
                        log.info("the server refuses %s; sending requests without them", ", ".join(sent))
                        self.extra = {}
                except api.APIStatusError as e:
                    raise UserError(f"{self.shown} refused the request ({_short(e)})") from None
                except api.APIConnectionError as e:
                    raise UserError(f"cannot get completions from {self.shown} after "
                                    f"{self.cfg.retries + 1} attempts: {_short(e)}") from None
        return self._completions(resp, body["max_tokens"], stop)

    def _completions(self, resp, max_tokens: int, stop) -> list[Completion]:
        choices = sorted(resp.choices or [], key=lambda c: c.index or 0)
        if not choices:
            raise UserError(f"{self.shown} answered without choices: not an OpenAI completions reply")
        usage = getattr(resp.usage, "completion_tokens", None) if len(choices) == 1 else None
        return [self._completion(c, usage, max_tokens, stop) for c in choices]

    def _completion(self, choice, usage: int | None, max_tokens: int, stop) -> Completion:
        text, reason = choice.text, choice.finish_reason
        hit = getattr(choice, "stop_reason", None) or getattr(choice, "matched_stop", None)  # vLLM / SGLang
        if isinstance(hit, str) and hit in (stop or []) and not cut_at_stop(text or "", stop)[1]:
            text = (text or "") + hit  # the server left the stop string out
        if usage is None:  # one usage for several choices: this choice's own count
            usage = max_tokens if reason == "length" else \
                len(self.tokenizer(cut_at_stop(valid_text(text)[0], stop)[0], add_special_tokens=False)["input_ids"])
        c = make_completion(text, usage, stop, reason, max_tokens)
        warn_if_tags_dropped(c.text, reason, stop, log)
        return c


def _short(e) -> str:
    body = getattr(e, "body", None)
    detail = (body.get("detail") or body.get("error") or body.get("message")) if isinstance(body, dict) else None
    return secrets.redact(" ".join(str(detail or getattr(e, "message", None) or e).split())[:200])
