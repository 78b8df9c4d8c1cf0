"""Multiple-choice answers: the letter (A-D) of the last explicit answer statement.

A letter counts only where it is stated as the answer, in the solution part
(read after Unicode NFKC, so full-width `（Ｂ）` and `：` are `(B)` and `:`):
- a box: `\\boxed{C}`, `\\boxed{(C)}`, `\\boxed{\\text{C}}`, `\\boxed{C) 42 J}`, `\\boxed{c}`;
- an answer cue, then the letter in either case, standing alone:
  - a noun and a verb or colon: "answer" / "answers" (or "correct / right /
    best / final / my" + "option / choice / pick / selection") followed by is /
    would be / : / = / a dash, perhaps after an aside ("The answer, I believe,
    is D"); the same in other languages: French réponse
    ("La bonne réponse est (c)"), Spanish respuesta ("la respuesta correcta es
    la B"), Portuguese resposta,
    Italian risposta ("è"), German Antwort / Lösung ("ist", "lautet"), Dutch
    antwoord, Russian ответ, Polish odpowiedź, Turkish cevap / yanıt;
  - Chinese, Japanese, Korean cues need no verb: 答案 / 正确答案 / 选项 / 选择 /
    选 ("故选C", "选项 (B) $3.3\\mathrm{MeV}$。", "答案是：b"), 答え / 正解 / 解答,
    정답 / 답; unless the option is then called wrong or listed (选项B错误,
    选项B和C), or 选项 is compared (比较选项C和选项D);
  - a first person choosing: "I would pick B", "we choose (c)", "I'd go with
    D", "I'll opt for b", je choisis, elijo / escojo, ich wähle, scelgo, escolho;
  - then markup (`**`, `$`, `(`, `\\textbf{`) and fillers ("the letter", "option",
    "la", "a letra"): "ANSWER: b", "the answer is (B)", "The correct answer is
    **C. The mass ...**", "la respuesta correcta es la B";
  or the letter first: "(C) is the correct answer", "Option C is correct",
  "(B) 是正确的";
- a last line that is only the upper-case letter: `C`, `(C)`, `**C**`, `C.`; a
  whole solution part that is only a letter in either case (`d`, `(b)`); a
  `(C)` or `(c)` that ends the solution part ("... hence (C).");
- the solution part opening with an option label in either case: `(C) ...`,
  `C. ...`, `b. 4`, `c) ...`.
The rightmost statement decides (a box whose letter cannot be read, or that is
never closed, is a statement with no letter). Never an article ("a bit", "The
answer is a bit subtle", "I'd pick a safe option": a lower-case `a` followed by
a word), a lower-case letter in a formula ("the answer is c = 3 m/s"), a letter
inside a word, or an option merely discussed ("Option D is wrong").

math-verify's `StringExtractionConfig` (letters after "answer", else any
letter standing alone) is not used: with lower-case keys it reads articles, it
has no cue words but "answer", and its unanchored patterns take any capital
standing alone ("A careful reader ...").
"""

from __future__ import annotations

import re
import unicodedata

from stages.verify.extract import boxes, unwrap

LETTERS = "ABCD"
_MARKUP = r"(?:\s|\*|_|\$|\(|\[|\\text(?:bf|rm)?\s*\{|\\mathrm\s*\{|\\mathbf\s*\{)*"
# the letter, standing alone; lower case never an article ('a bit') nor a symbol in a formula ('c = 3')
_LETTER = (r"(?:([A-D])|(?!a[ \t]+[A-Za-z])([a-d])(?![ \t]*(?:[=<>+/^_]|\\(?:times|cdot|neq?|le|ge|approx))))"
           r"(?![A-Za-z0-9\u00c0-\u024f])"
           r"(?!\s*(?:是|为|為)?\s*(?:错|錯|不|和|与|與|或|、))")
_NOUN = (r"(?<![^\W\d_])(?i:answers?|(?:correct|right|best|final|my)\s+(?:option|choice|pick|selection)"
         r"|r[ée]ponse|respuesta|resposta|risposta|antwort|l[öo]sung|antwoord|ответ|odpowied[źz]|cevap|yan[ıi]t)"
         r"(?![^\W\d_])")
_ADJ = r"(?:\s+(?i:correct[ae]?|correta|corretta|juste|bonne|exacta|final[e]?|richtige))?"  # la respuesta correcta es
_COPULA = (r"(?i:is|was|would\s+be|should\s+be|must\s+be|will\s+be|est|sera|serait|es|ser[ií]a|ser[áa]|é|è"
           r"|sarebbe|ist|w[äa]re|lautet|heißt|—|–)(?![^\W\d_])")
_CJK = (r"(?:(?:正确|正確)?(?:答案|(?<!比较)(?<!對比)(?<!对比)(?<!分析)(?<!考虑)(?<!考慮)(?<![和与與或、])(?:选项|選項)"
        r"|选择|選擇|选|選|答え|正解|解答|정답|답(?=\s*[:은는이]))|答(?=\s*:))")
_CJK_VERB = r"(?:是|为|為|应为|應為|应该是|應該是|应是|应选|应该选|は|은|는|이)?"
_CHOOSER = (r"(?<![^\W\d_])(?i:(?:I|we)(?:\s*'(?:d|ll|m\s+going\s+to)|\s+(?:would|will|shall|should|must|can"
            r"|am\s+going\s+to|are\s+going\s+to))?(?:\s+(?:definitely|probably|therefore|thus|then|also|rather"
            r"|still))?\s+(?:pick|choose|select|go\s+with|opt\s+for|chose|picked|selected|went\s+with)"
            r"|je\s+choisis|je\s+choisirais|elijo|escojo|elegir[ií]a|ich\s+w[äa]hle|scelgo|sceglierei|escolho"
            r"|escolheria)(?![^\W\d_])")
_FILLER = (r"(?:(?i:the|la|le|el|a|die|der|das|het|de|letter|lettre|letra|lettera|buchstabe|option|choice"
           r"|opci[óo]n|op[çc][ãa]o|opzione|alternativa|answer|r[ée]ponse|respuesta|resposta|risposta|antwort)"
           r"(?![^\W\d_])|l'|选项|選項)")
_STATEMENT = re.compile(
    r"(?:" + _NOUN + _ADJ + r"(?:\s*,[^,.\n]{1,30},)?[\s*_]*(?:" + _COPULA + r"\s*[:=]?|[:=]|\s[-\u2013\u2014])"
    r"|" + _CJK + r"[\s*_]*" + _CJK_VERB + r"\s*[:=]?"
    r"|" + _CHOOSER + r"\s*:?)"
    + _MARKUP + r"(?:" + _FILLER + _MARKUP + r")*" + _LETTER)
_LETTER_FIRST = re.compile(  # "(C) is the correct answer", "Option C is correct", "(B) 是正确的"
    r"(?<![A-Za-z0-9])(?:\(([A-Da-d])\)|([A-D]))[*_]*\s*(?:\s(?i:is)\s+(?:(?i:the)\s+)?"
    r"(?:(?i:(?:correct|right|best|final)\s+)?(?i:answer|option|choice)|(?i:correct|right))\b"
    r"|(?:是|为|為)?\s*(?:正确|正確|对的|對的))")
_LINE = re.compile(r"^[\s*_$]*\(?([A-D])\)?[\s*_$.]*$", re.MULTILINE)
_ONLY = re.compile(r"[\s*_$(\[]*([A-Da-d])[\s*_$.)\]]*")  # a whole solution part that is only the letter
_CLOSING = re.compile(r"\(([A-Da-d])\)[\s*_$.!\u3002]*$")  # "... hence (C)." ending the solution part
_OPENING = re.compile(r"^[\s*_]*(?:\(([A-Da-d])\)|([A-Da-d])[.)](?=\s|$))")
_BOXED_LETTER = re.compile("^" + _MARKUP + r"([A-Da-d])(?![A-Za-z0-9])")


def _box_letter(content: str | None) -> str | None:
    if content is None:
        return None
    m = _BOXED_LETTER.match(unwrap(content))
    return m.group(1).upper() if m else None


def _found(m: re.Match) -> tuple[int, str]:
    return m.start(), next(g for g in m.groups() if g).upper()


def statements(text: str) -> list[tuple[int, str | None]]:
    """(position, letter or None) of every answer statement in `text`."""
    text = unicodedata.normalize("NFKC", text)
    found = [(pos, _box_letter(content)) for pos, content in boxes(text)]
    for pattern in (_STATEMENT, _LETTER_FIRST, _LINE, _CLOSING):
        found += [_found(m) for m in pattern.finditer(text)]
    m = _ONLY.fullmatch(text)
    if m:
        found.append(_found(m))
    m = _OPENING.match(text)
    if m:
        found.append((-1, (m.group(1) or m.group(2)).upper()))
    return sorted(found, key=lambda s: s[0])


def extract_letter(text: str) -> str | None:
    """The letter of the rightmost answer statement of `text`, or None."""
    found = statements(text)
    return found[-1][1] if found else None


def parse_gold_letter(gold: str) -> str:
    """'C', '(C)', '\\text{C}' -> 'C'; ValueError for anything that is not one letter A-D."""
    want = unwrap(gold).strip().strip("()").strip().upper()
    if len(want) != 1 or want not in LETTERS:
        raise ValueError(f"gold answer {gold!r} is not a letter {LETTERS[0]}-{LETTERS[-1]}")
    return want
