"""The call flow of 128, as a pure machine: events in, actions out, no I/O and no clock.

``Call`` wraps a generator that reads like the script a caller hears (Adhearsion-style menus:
keys, invalid, timeout, failure, tries), while staying sans-IO in the h11 sense: a driver sends
each ``Event`` and carries out each ``Action``. A hangup is ``Call.hangup()``, which returns the
clean-up actions (discard an unsubmitted recording, record the anonymous outcome).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator

from ivr.directory import Directory
from ivr.events import (
    Action,
    Ask,
    AwaitFiled,
    ComplaintDraft,
    Discard,
    Event,
    FileComplaint,
    Filed,
    Finish,
    Input,
    LookupStatus,
    Play,
    RateComplaint,
    Record,
    SetLanguage,
)
from ivr.menu import Menu
from common.tracking import is_well_formed

# an outcome reached later in a call outranks an earlier, lesser one
OUTCOME_RANK = ("abandoned", "failed_input", "system_error", "province_inactive", "operator",
                "followup", "out_of_scope", "refused", "complaint_filed")
MAX_REPEATS = 10
DEFAULT_LANGUAGE = "fa"  # a province that lists none, and a caller whose province is not known yet

Flow = Generator[Action, Event, None]


def _drain(flow: Generator) -> list:
    """The actions of a flow that needs no answer (each is sent ``None``)."""
    out = []
    try:
        out.append(next(flow))
        while True:
            out.append(flow.send(None))
    except StopIteration:
        return out


def digit_prompts(digits: str) -> tuple[str, ...]:
    """Digits are read from the project's own recordings: Asterisk has no Persian numbers."""
    return tuple(f"digits/{d}" for d in digits if d.isdigit())


class Call:
    """One call. ``start()`` gives the first action; ``send(event)`` the next."""

    def __init__(self, menu: Menu, directory: Directory, province_arg: str | None,
                 operator: bool, recordings_dir: str, new_name: Callable[[], str]):
        self.menu = menu
        self.dir = directory
        self.operator = operator
        self.recordings_dir = recordings_dir.rstrip("/")
        self._new_name = new_name
        self._province_arg = (province_arg or "").strip()
        self.province: str | None = None
        # what the channel speaks: the driver sets it before the first prompt, the flow changes it
        self.language = self._languages(self._province_arg)[0]
        self.outcome: str | None = None
        self.finished = False
        self._recording: str | None = None  # written by Asterisk, not yet part of a complaint
        self._filing: ComplaintDraft | None = None  # submitted, its write not settled yet
        self._gen = self._run()

    # ---- driver interface ---------------------------------------------------------------
    def start(self) -> Action:
        return self._step(next(self._gen))

    def send(self, event: Event) -> Action:
        return self._step(self._gen.send(event))

    def hangup(self) -> list[Action]:
        """The caller hung up: what is left to do, ending with the anonymous ``Finish``.

        A complaint whose write is under way is still filed (the write is never cancelled): the
        list is then ``AwaitFiled`` and a provisional ``Finish``; the driver hands the ``Filed``
        to ``settled``, whose actions replace that ``Finish`` (the outcome depends on the write).
        A driver that cannot learn the result keeps the provisional one."""
        self._gen.close()
        if self._filing is not None:
            return [AwaitFiled(), *self._closing()]
        return self._closing()

    def settled(self, filed: Filed) -> list[Action]:
        """After a hangup during the write: the actions left once it settled (see ``hangup``)."""
        actions = _drain(self._settle(filed))
        self.finished = False  # the Finish that ``hangup`` gave was provisional
        return actions + self._closing()

    def _closing(self) -> list[Action]:
        actions: list[Action] = []
        if self._recording:
            actions.append(Discard(self._recording))
            self._recording = None
        if not self.finished:
            self.finished = True
            actions.append(Finish(self.outcome or "abandoned", self.province, language=self.language))
        return actions

    def _step(self, action: Action) -> Action:
        if isinstance(action, Finish):
            self.finished = True
            action = dataclasses.replace(action, language=self.language)
        return action

    def _languages(self, province: str | None) -> tuple[str, ...]:
        return self.dir.languages.get(province or "") or (DEFAULT_LANGUAGE,)

    def _speak(self, language: str) -> Flow:
        """Switch the channel's language; remembered for the rest of the call."""
        if language != self.language:
            self.language = language
            yield SetLanguage(language)

    def _note(self, outcome: str) -> None:
        if self.outcome is None or OUTCOME_RANK.index(outcome) > OUTCOME_RANK.index(self.outcome):
            self.outcome = outcome

    # ---- the script ---------------------------------------------------------------------
    def _run(self) -> Flow:
        m = self.menu
        lead = tuple(m.section("welcome")["prompts"])
        province = self._province_arg
        if province not in self.dir.known_provinces:
            province = yield from self._ask_province(lead)
            lead = ()
            if province is None:
                yield from self._fail()
                return
            yield from self._speak(self._languages(province)[0])
        self.province = province
        if province not in self.dir.active_provinces:
            self._note("province_inactive")
            if lead:  # the welcome may be skipped, the reason the call ends may not
                yield Play(lead)
            yield Play((m.section("province")["inactive"],), interruptible=False)
            yield Finish("province_inactive", province)
            return
        main_prompts = tuple(m.section("main")["prompts"])
        if self.operator:
            main_prompts += tuple(m.section("main").get("operator_prompts", ()))
        typed = ""
        if self._offers(province):
            typed = yield from self._choose_language(lead, province)
            lead = ()
        while True:
            choice = yield from self._menu("main", main_prompts, lead, typed)
            lead, typed = (), ""
            if choice is None:
                yield from self._fail()
                return
            if choice == "operator":
                self._note("operator")
                yield Play((m.default("operator_handoff"),))
                yield Finish("operator", province, next="operator")
                return
            if choice == "followup":
                yield from self._followup()
                return
            result = yield from self._new_complaint()
            if result == "out_of_scope":
                lead = (m.section("indicator")["out_of_scope"],)
                continue
            if result is None:
                yield from self._fail()
            return

    def _offers(self, province: str) -> dict[str, str]:
        """key -> language, for the languages the province offers (none: only one is spoken)."""
        offered = self._languages(province)
        if len(offered) < 2 or "language" not in self.menu.data:
            return {}
        return {k: lang for k, lang in self.menu.keys("language").items() if lang in offered}

    def _choose_language(self, lead: tuple[str, ...], province: str) -> Flow:
        """The welcome offers the province's other languages, each in its own words; a key that
        picks none is the caller typing ahead, and answers the main menu (returned)."""
        offers = self._offers(province)
        said = tuple(f"language-{lang}" for lang in self._languages(province)
                     if lang != self.language and lang in offers.values())
        event = yield Ask(lead + tuple(self.menu.section("language").get("prompts", ())) + said, 1,
                          self.menu.timeout_ms("language"), "language")
        chosen = offers.get(event.digits[:1])
        if chosen is None:
            return event.digits[:1]
        yield from self._speak(chosen)
        return ""

    def _menu(self, name: str, prompts: tuple[str, ...], lead: tuple[str, ...] = (),
              typed: str = "") -> Flow:
        """Ask a one-key question; the action of the key, or None when tries ran out. ``typed``:
        a key the caller already pressed for it (during the welcome)."""
        keys = self.menu.keys(name)
        tries, repeats = 0, 0
        while tries < self.menu.tries(name) and repeats < MAX_REPEATS:
            if typed:
                event, typed = Input(typed), ""
            else:
                event = yield Ask(lead + prompts, 1, self.menu.timeout_ms(name), name)
            action = keys.get(event.digits[:1]) if event.digits else None
            if action == "operator" and not self.operator:
                action = None
            if action == "repeat":
                repeats += 1
                lead = ()
                continue
            if action is not None:
                return action
            tries += 1
            lead = (self.menu.default("no_input" if not event.digits else "invalid"),)
        return None

    def _entry(self, name: str, check: Callable[[str], str | None], lead=()) -> Flow:
        """Ask for a code ended by # or a pause; ``check`` returns None or the prompt for a bad code."""
        sec = self.menu.section(name)
        for _ in range(self.menu.tries(name)):
            event = yield Ask(lead + tuple(sec["prompts"]), int(sec["max_digits"]),
                              self.menu.timeout_ms(name), name)
            if not event.digits:
                lead = (self.menu.default("no_input"),)
                continue
            problem = check(event.digits)
            if problem is None:
                return event.digits
            lead = (problem,)
        return None

    def _ask_province(self, lead: tuple[str, ...]) -> Flow:
        unknown = self.menu.section("province")["unknown"]
        return (yield from self._entry(
            "province", lambda c: None if c in self.dir.known_provinces else unknown, lead))

    def _choose_office(self) -> Flow:
        """(province, agency, office or None) for the complaint, or None."""
        sec = self.menu.section("office")
        star = sec.get("unknown_key", "*")
        while True:
            code = yield from self._entry(
                "office",
                lambda c: None if c.startswith(star) or c in self.dir.offices else sec["unknown"])
            if code is None:
                return None
            if code.startswith(star):
                agency_unknown = self.menu.section("agency")["unknown"]
                typed = code[len(star):]  # a caller who knows the drill types "*101" in one go
                if typed in self.dir.agencies:
                    agency = typed
                else:
                    agency = yield from self._entry(
                        "agency", lambda c: None if c in self.dir.agencies else agency_unknown,
                        (agency_unknown,) if typed else ())
                if agency is None:
                    return None
                choice = (self.province, agency, None)
            else:
                office = self.dir.offices[code]
                choice = (office.province_code, office.agency_code, office.code)
            conf = self.menu.section("confirm_office")
            readback = tuple(conf["prompts"]) + (f"agency-{choice[1]}",)
            if choice[2]:
                readback += (conf["office_number"],) + digit_prompts(choice[2])
            answer = yield from self._menu("confirm_office", readback + tuple(conf["question"]))
            if answer == "confirm":
                return choice
            if answer is None:
                return None

    def _new_complaint(self) -> Flow:
        """File one complaint: "filed", "out_of_scope", "refused", "failed" (not stored), or None
        when tries ran out."""
        while True:
            where = yield from self._choose_office()
            if where is None:
                return None
            province, agency, office = where
            indicator = yield from self._menu("indicator", tuple(self.menu.section("indicator")["prompts"]))
            if indicator is None:
                return None
            if indicator == "out_of_scope":
                self._note("out_of_scope")
                return "out_of_scope"
            recorded = yield from self._offer_recording()
            if recorded is False:
                return None
            summary = self.menu.section("summary")
            said = summary["with_recording"] if self._recording else summary["without_recording"]
            answer = yield from self._menu(
                "summary", tuple(summary["prompts"]) + (f"agency-{agency}", f"indicator-{indicator}", said)
                + tuple(summary["question"]))
            if answer == "restart" or answer is None:
                if self._recording:
                    yield Discard(self._recording)
                    self._recording = None
                if answer is None:
                    return None
                continue
            filed = yield from self._file(ComplaintDraft(province, agency, office, indicator, self._recording))
            sec = self.menu.section("filed")
            if filed.refused:
                # an admin's menu from before the limits may lack the key: the catalog has the prompt
                yield from self._refuse(sec.get("limit_reached", "filed-limit-reached"))
                return "refused"
            if filed.tracking_code is None:
                # the driver could not store it: say so rather than read a code that means nothing
                yield self._notice(sec["store_failed"])
                yield Finish(self.outcome, self.province)
                return "failed"
            yield from self._read_code(filed.tracking_code)
            return "filed"

    def _file(self, draft: ComplaintDraft) -> Flow:
        """Store the complaint while the caller hears a prompt that promises nothing; the
        ``Filed`` once it is durable (stored or journaled), refused, or failed.

        The write and the prompt race: the write begins first and is never cancelled, so a
        caller who hangs up meanwhile still leaves the complaint filed (``hangup``)."""
        self._filing = draft
        self._recording = None  # the complaint's from now on: a hangup must not discard it
        yield FileComplaint(draft)
        # an admin's menu from before the overlap may lack the key: the catalog has the prompt
        yield Play((self.menu.section("filed").get("wait", "filed-wait"),))
        return (yield from self._settle((yield AwaitFiled())))

    def _settle(self, filed: Filed) -> Flow:
        """What a settled write means for the call: its outcome, and the recording of a
        complaint that was refused or could not be filed (nothing will keep it). Returns ``filed``."""
        draft, self._filing = self._filing, None
        if filed.tracking_code is None:
            self._note("refused" if filed.refused else "system_error")
            if draft is not None and draft.recording:  # nothing stored or journaled refers to it
                yield Discard(draft.recording)
        else:
            self._note("complaint_filed")
        return filed

    def _offer_recording(self) -> Flow:
        """True/None after the optional voice description; False when tries ran out."""
        sec = self.menu.section("recording")
        choice = yield from self._menu("recording", tuple(sec["prompts"]))
        if choice is None:
            return False
        if choice == "skip":
            return None
        path = f"{self.recordings_dir}/{self._new_name()}"
        yield Play((sec["before"],))
        # owned from now on: a hangup mid-recording leaves a partial file to remove
        self._recording = f"{path}.{sec.get('format', 'wav')}"
        result = yield Record(path, sec.get("format", "wav"), int(sec["max_seconds"]) * 1000,
                              int(sec.get("silence_seconds", 0)), True)
        if result.samples > 0:
            return True
        yield Discard(self._recording)  # Asterisk leaves a header-only file for an empty one
        self._recording = None
        return None

    def _read_code(self, code: str) -> Flow:
        sec = self.menu.section("filed")
        prompts = tuple(sec["prompts"]) + digit_prompts(code) + tuple(sec["question"])
        for _ in range(MAX_REPEATS):
            event = yield Ask(prompts, 1, self.menu.timeout_ms("filed"), "filed")
            if self.menu.keys("filed").get(event.digits) != "repeat":
                break
        yield Play((self.menu.default("goodbye"),))
        yield Finish("complaint_filed", self.province)

    def _followup(self) -> Flow:
        sec = self.menu.section("followup")
        self._note("followup")
        lead: tuple[str, ...] = ()
        for _ in range(self.menu.tries("followup")):
            event = yield Ask(lead + tuple(sec["prompts"]), int(sec["max_digits"]),
                              self.menu.timeout_ms("followup"), "followup")
            lead = (sec["wrong"],) if event.digits else (self.menu.default("no_input"),)
            if not is_well_formed(event.digits):
                continue
            found = yield LookupStatus(event.digits)
            if found.status is None:
                continue
            if found.status == "limited":
                yield from self._refuse(sec.get("limited", "followup-limited"))
                return
            said = (f"status-{found.status}",)
            if found.outcome:
                said += (f"outcome-{found.outcome}",)
            if found.status == "resolved" and not found.rated:
                yield from self._rate(event.digits, said)
            elif found.status == "unavailable":
                yield Play(said + tuple(sec["then"]), interruptible=False)
            else:
                yield Play(said + tuple(sec["then"]))
            yield Finish("followup", self.province)
            return
        yield Play((sec["wrong"], self.menu.default("failure")))
        yield Finish("failed_input", self.province)

    def _rate(self, code: str, lead: tuple[str, ...]) -> Flow:
        """Once resolved, the caller rates the handling 1-5 (the "quality" figure), once."""
        sec = self.menu.section("rating")
        lowest, highest = int(sec.get("lowest", 1)), int(sec.get("highest", 5))
        # a Play of its own: a key pressed during the read-out skips it and is dropped, so only
        # a key pressed once the rating question has started can be the rating
        yield Play(lead)
        lead = ()
        for _ in range(self.menu.tries("rating")):
            event = yield Ask(lead + tuple(sec["prompts"]), 1, self.menu.timeout_ms("rating"), "rating")
            lead = (self.menu.default("no_input" if not event.digits else "invalid"),)
            if event.digits.isdigit() and lowest <= int(event.digits) <= highest:
                yield RateComplaint(code, int(event.digits))
                yield Play((sec["thanks"],) + tuple(self.menu.section("followup")["then"]))
                return
        yield Play(tuple(self.menu.section("followup")["then"]))

    def _notice(self, prompt: str) -> Play:
        """A notice that ends the call, then goodbye: played in full, keys typed ahead or not."""
        return Play((prompt, self.menu.default("goodbye")), interruptible=False)

    def _refuse(self, prompt: str) -> Flow:
        """Over a per-caller limit: nothing was stored or looked up; say so politely and end."""
        self._note("refused")
        if self._recording:  # made for a complaint that will not be kept
            yield Discard(self._recording)
            self._recording = None
        yield self._notice(prompt)
        yield Finish("refused", self.province)

    def _fail(self) -> Flow:
        """Tries ran out: the operator if there is one, else a polite goodbye."""
        self._note("failed_input")
        if self.operator:
            yield Play((self.menu.default("operator_handoff"),))
            yield Finish(self.outcome, self.province, next="operator")
        else:
            yield Play((self.menu.default("failure"),))
            yield Finish(self.outcome, self.province)
