"""The call flow as a pure machine: every path, with no I/O at all."""
from __future__ import annotations

import itertools

import pytest

from ivr.directory import Directory, OfficeInfo
from ivr.events import (
    Ask,
    AwaitFiled,
    Discard,
    Done,
    FileComplaint,
    Filed,
    Filing,
    Finish,
    Input,
    LookupStatus,
    Play,
    Played,
    RateComplaint,
    Record,
    Recorded,
    StatusFound,
)
from ivr.flow import Call
from ivr.menu import MenuError, load_menu
from common.tracking import is_well_formed, new_code

INDICATORS = {"rules_not_transparent", "decisions_not_transparent", "equipment_out_of_order",
              "disrespect", "late_start_early_end", "work_postponed", "employee_absent"}
DIRECTORY = Directory(
    active_provinces=frozenset({"28", "26", "21"}),
    known_provinces=frozenset({"28", "26", "21", "31", "11"}),
    agencies=frozenset({"101", "102", "105"}),
    offices={"280101": OfficeInfo("280101", "101", "28"), "210105": OfficeInfo("210105", "105", "21")},
    indicators=frozenset(INDICATORS),
)
CODE = "1234567894"  # a well-formed code (Damm)
assert is_well_formed(CODE)


def make_call(province="28", operator=False, menu=None):
    names = (f"rec{i}" for i in itertools.count())
    return Call(menu or load_menu(None, INDICATORS), DIRECTORY, province, operator, "/rec",
                lambda: next(names))


class Script:
    """Answers the flow's actions: keys for questions ('' = silence), canned effects."""

    def __init__(self, keys, samples=9612, filed=CODE, status=("forwarded", None)):
        self.keys = list(keys)
        self.samples = samples
        self.filed = filed
        self.status = status
        self.actions = []

    def answer(self, action):
        if isinstance(action, Ask):
            k = self.keys.pop(0).replace("-", "")  # "-": silence, as in pbxsim scripts
            return Input(k)
        if isinstance(action, Play):
            return Played()
        if isinstance(action, Record):
            return Recorded(self.samples)
        if isinstance(action, (Discard, RateComplaint)):
            return Done()
        if isinstance(action, FileComplaint):
            return Filing()
        if isinstance(action, AwaitFiled):
            return self.filed if isinstance(self.filed, Filed) else Filed(self.filed)
        if isinstance(action, LookupStatus):
            return StatusFound(*self.status) if self.status else StatusFound(None)
        raise AssertionError(action)

    def run(self, call, hangup_after=None):
        action = call.start()
        while True:
            self.actions.append(action)
            if isinstance(action, Finish):
                return action
            # a driver hangs up between media commands, never in the middle of an effect
            if (hangup_after is not None and len(self.actions) > hangup_after
                    and isinstance(action, (Ask, Play, Record))):
                return self.hang_up(call)
            action = call.send(self.answer(action))

    def hang_up(self, call):
        """The clean-up as the session does it: a write under way settles first."""
        left = call.hangup()
        while left:
            action = left.pop(0)
            self.actions.append(action)
            if isinstance(action, AwaitFiled):
                left = call.settled(self.answer(action))
        return self.actions[-1]


def asks(actions):
    return [a for a in actions if isinstance(a, Ask)]


def filed(actions):
    return [a.draft for a in actions if isinstance(a, FileComplaint)]


HAPPY = ["1", "280101", "1", "4", "1", "1", ""]  # new, office, confirm, indicator, record, submit


def test_happy_path_files_one_complaint_and_reads_the_code_back():
    s = Script(HAPPY)
    end = s.run(make_call())
    assert end == Finish("complaint_filed", "28")
    (draft,) = filed(s.actions)
    assert (draft.province_code, draft.agency_code, draft.office_code, draft.indicator_code) == \
        ("28", "101", "280101", "disrespect")
    assert draft.recording == "/rec/rec0.wav"
    readback = asks(s.actions)[-1].prompts
    assert readback[0] == "filed-code-is"
    assert readback[1:-1] == tuple(f"digits/{d}" for d in CODE)
    assert s.actions[0].prompts[:1] == ("welcome",)  # welcome is part of the first question


def test_welcome_promises_anonymity_before_anything_else():
    s = Script(["9", "-", "-", "-"])
    s.run(make_call())
    assert s.actions[0] == Ask(("welcome", "main-menu"), 1, 5000, "main")


def test_tracking_code_readback_repeats_on_9():
    s = Script(HAPPY[:-1] + ["9", "9", ""])
    s.run(make_call())
    assert [a.prompts[0] for a in asks(s.actions)[-3:]] == ["filed-code-is"] * 3


def test_office_is_taken_from_the_office_code_not_the_callers_province():
    s = Script(["1", "210105", "1", "3", "2", "1", ""])
    s.run(make_call(province="28"))
    assert filed(s.actions)[0].province_code == "21"


def test_unknown_office_code_is_said_unknown_and_asked_again():
    s = Script(["1", "999999", "280101", "1", "4", "2", "1", ""])
    s.run(make_call())
    office_asks = [a for a in asks(s.actions) if "enter-office-code" in a.prompts]
    assert office_asks[1].prompts == ("office-unknown", "enter-office-code")
    assert filed(s.actions)[0].office_code == "280101"


def test_star_then_agency_code_when_the_office_code_is_unknown():
    s = Script(["1", "*", "555", "102", "1", "7", "2", "1", ""])
    s.run(make_call())
    ask_texts = [a.prompts for a in asks(s.actions)]
    assert ("agency-unknown", "enter-agency-code") in ask_texts
    draft = filed(s.actions)[0]
    assert (draft.province_code, draft.agency_code, draft.office_code) == ("28", "102", None)


def test_star_and_agency_code_typed_in_one_go_are_both_taken():
    # on a real Asterisk "*" then "102" a moment later is one GET DATA entry: "*102"
    s = Script(["1", "*102", "1", "7", "2", "1", ""])
    s.run(make_call())
    assert not any("enter-agency-code" in a.prompts for a in asks(s.actions))
    draft = filed(s.actions)[0]
    assert (draft.province_code, draft.agency_code, draft.office_code) == ("28", "102", None)


def test_star_and_an_unknown_agency_in_one_go_asks_for_the_agency_again():
    s = Script(["1", "*555", "102", "1", "7", "2", "1", ""])
    s.run(make_call())
    assert ("agency-unknown", "enter-agency-code") in [a.prompts for a in asks(s.actions)]
    assert filed(s.actions)[0].agency_code == "102"


def test_readback_then_2_reenters_the_office():
    s = Script(["1", "280101", "2", "210105", "1", "5", "2", "1", ""])
    s.run(make_call())
    confirm = [a for a in asks(s.actions) if a.prompts[-1] == "confirm-or-reenter"]
    assert confirm[0].prompts == ("you-selected", "agency-101", "office-number",
                                  *(f"digits/{d}" for d in "280101"), "confirm-or-reenter")
    assert filed(s.actions)[0].office_code == "210105"


@pytest.mark.parametrize("key,code", [("1", "rules_not_transparent"), ("2", "decisions_not_transparent"),
                                      ("3", "equipment_out_of_order"), ("4", "disrespect"),
                                      ("5", "late_start_early_end"), ("6", "work_postponed"),
                                      ("7", "employee_absent")])
def test_each_of_the_seven_indicators(key, code):
    s = Script(["1", "280101", "1", key, "2", "1", ""])
    s.run(make_call())
    assert filed(s.actions)[0].indicator_code == code


def test_indicator_8_is_out_of_scope_counted_and_back_to_the_main_menu():
    s = Script(["1", "280101", "1", "8", "-", "-", "-"])
    end = s.run(make_call())
    back = asks(s.actions)[4]
    assert back.prompts == ("out-of-scope", "main-menu")
    assert not filed(s.actions)
    assert end.outcome == "out_of_scope"  # later failures do not hide the out-of-scope call


def test_summary_2_starts_over_and_discards_the_recording():
    s = Script(["1", "280101", "1", "4", "1", "2", "210105", "1", "3", "2", "1", ""])
    s.run(make_call())
    assert Discard("/rec/rec0.wav") in s.actions
    draft = filed(s.actions)[0]
    assert draft.office_code == "210105" and draft.recording is None


def test_an_empty_recording_counts_as_none_and_its_file_is_removed():
    s = Script(HAPPY, samples=0)
    s.run(make_call())
    assert Discard("/rec/rec0.wav") in s.actions
    assert filed(s.actions)[0].recording is None
    summary = [a for a in asks(s.actions) if a.prompts[0] == "summary"][0]
    assert "summary-without-recording" in summary.prompts


def test_record_action_uses_configured_limits():
    s = Script(HAPPY)
    s.run(make_call())
    rec = [a for a in s.actions if isinstance(a, Record)][0]
    assert rec == Record("/rec/rec0", "wav", 60000, 3, True)
    assert s.actions[s.actions.index(rec) - 1] == Play(("record-after-beep",))


@pytest.mark.parametrize("keys,lead", [(["", "", ""], "no-input"), (["5", "5", "5"], "invalid-key")])
def test_three_failed_tries_end_politely(keys, lead):
    s = Script(keys)
    end = s.run(make_call())
    assert end == Finish("failed_input", "28")
    assert asks(s.actions)[1].prompts == (lead, "main-menu")
    assert s.actions[-2] == Play(("goodbye-failure",))


def test_failed_tries_go_to_the_operator_when_one_is_configured():
    s = Script(["", "", ""])
    end = s.run(make_call(operator=True))
    assert end == Finish("failed_input", "28", next="operator")


def test_0_reaches_the_operator_only_when_configured():
    s = Script(["0"])
    assert s.run(make_call(operator=True)) == Finish("operator", "28", next="operator")
    assert "main-menu-operator" in s.actions[0].prompts
    s = Script(["0", "0", "0"])
    assert s.run(make_call(operator=False)).outcome == "failed_input"
    assert "main-menu-operator" not in s.actions[0].prompts


def test_9_repeats_the_menu_without_using_a_try():
    s = Script(["9", "9", "", "", "9", ""])
    s.run(make_call())
    assert len(asks(s.actions)) == 6


def test_missing_province_is_asked_for():
    s = Script(["99", "26", "9", "-", "-", "-"])
    s.run(make_call(province=None))
    prompts = [a.prompts for a in asks(s.actions)]
    assert prompts[0] == ("welcome", "enter-province")
    assert prompts[1] == ("province-unknown", "enter-province")
    assert prompts[2] == ("main-menu",)


def test_inactive_province_is_told_and_the_call_ends():
    s = Script([])
    end = s.run(make_call(province="31"))
    assert s.actions[:2] == [Play(("welcome",)), Play(("province-inactive",), interruptible=False)]
    assert end == Finish("province_inactive", "31")


def test_a_key_typed_during_the_welcome_cannot_skip_the_inactive_province_notice():
    s = Script([])
    s.run(make_call(province="31"))
    welcome, notice = s.actions[:2]
    assert welcome.interruptible and not notice.interruptible


def test_an_inactive_province_typed_by_the_caller_is_told_without_an_empty_play():
    s = Script(["31"])
    end = s.run(make_call(province=None))
    assert s.actions[1:] == [Play(("province-inactive",), interruptible=False),
                             Finish("province_inactive", "31")]
    assert end.outcome == "province_inactive"


def test_followup_reads_status_and_outcome_then_asks_for_a_rating():
    s = Script(["2", CODE, "4"], status=("resolved", "written_warning"))
    end = s.run(make_call())
    assert LookupStatus(CODE) in s.actions
    readout = Play(("status-resolved", "outcome-written_warning"))
    rate = asks(s.actions)[-1]
    assert s.actions[s.actions.index(rate) - 1] == readout
    assert rate.prompts == ("rate-handling",)
    assert RateComplaint(CODE, 4) in s.actions
    assert Play(("rating-thanks", "followup-goodbye")) in s.actions
    assert end.outcome == "followup"


def test_a_rating_is_asked_once_per_complaint_and_only_1_to_5():
    s = Script(["2", CODE], status=("resolved", "commendation", True))
    s.run(make_call())
    assert Play(("status-resolved", "outcome-commendation", "followup-goodbye")) in s.actions
    s = Script(["2", CODE, "7", "0", ""], status=("resolved", "commendation", False))
    s.run(make_call())
    assert not [a for a in s.actions if isinstance(a, RateComplaint)]
    assert [a.prompts for a in asks(s.actions)[-3:]] == [
        ("rate-handling",), ("invalid-key", "rate-handling"), ("invalid-key", "rate-handling")]


def test_the_rating_question_is_not_answered_by_a_key_typed_during_the_readout():
    # the read-out is a Play of its own: a key skips it and is dropped (Played carries no
    # digits), so the rating comes from the first key typed once "rate-handling" has started
    s = Script(["2", CODE, "3"], status=("resolved", "written_warning"))
    s.run(make_call())
    (rating_ask,) = [a for a in asks(s.actions) if a.step == "rating"]
    assert rating_ask.prompts == ("rate-handling",)
    assert not [a for a in asks(s.actions) if "status-resolved" in a.prompts]
    assert RateComplaint(CODE, 3) in s.actions


def test_an_unresolved_complaint_is_not_rated():
    s = Script(["2", CODE], status=("under_review", None))
    s.run(make_call())
    assert Play(("status-under_review", "followup-goodbye")) in s.actions


def test_a_follow_up_while_the_database_is_away_is_told_in_full():
    s = Script(["2", CODE], status=("unavailable",))
    end = s.run(make_call())
    assert Play(("status-unavailable", "followup-goodbye"), interruptible=False) in s.actions
    assert end.outcome == "followup"


def test_too_many_code_attempts_today_end_the_call_politely_as_refused():
    s = Script(["2", CODE], status=("limited",))
    end = s.run(make_call())
    assert s.actions[-2:] == [Play(("followup-limited", "goodbye"), interruptible=False),
                              Finish("refused", "28")]
    assert len([a for a in s.actions if isinstance(a, LookupStatus)]) == 1
    assert not [a for a in s.actions if isinstance(a, RateComplaint)]


def test_followup_rejects_a_mistyped_code_without_a_lookup_and_ends_after_three():
    typo = CODE[:3] + CODE[4] + CODE[3] + CODE[5:]  # two neighbours swapped
    s = Script(["2", typo, "12", "", ])
    end = s.run(make_call())
    assert not [a for a in s.actions if isinstance(a, LookupStatus)]
    assert end == Finish("failed_input", "28")


def test_followup_unknown_code_counts_as_wrong():
    s = Script(["2", CODE, CODE, CODE], status=None)
    end = s.run(make_call())
    assert len([a for a in s.actions if isinstance(a, LookupStatus)]) == 3
    assert end.outcome == "failed_input"


def test_store_failure_is_not_read_as_a_code():
    s = Script(HAPPY, filed=None)
    end = s.run(make_call())
    assert end.outcome == "system_error"
    assert Play(("store-failed", "goodbye"), interruptible=False) in s.actions
    assert not [a for a in asks(s.actions) if a.prompts[0] == "filed-code-is"]


def test_a_caller_over_the_complaint_limit_is_told_and_the_recording_discarded():
    s = Script(HAPPY, filed=Filed(None, refused=True))
    end = s.run(make_call())
    assert end == Finish("refused", "28")
    assert s.actions[-3:] == [Discard("/rec/rec0.wav"),
                              Play(("filed-limit-reached", "goodbye"), interruptible=False),
                              Finish("refused", "28")]
    assert not [a for a in asks(s.actions) if a.prompts[0] == "filed-code-is"]


def test_a_refused_complaint_without_a_recording_discards_nothing():
    s = Script(["1", "280101", "1", "4", "2", "1"], filed=Filed(None, refused=True))
    assert s.run(make_call()) == Finish("refused", "28")
    assert not [a for a in s.actions if isinstance(a, Discard)]


def test_hanging_up_during_the_limit_notice_is_still_refused_with_nothing_left():
    full = Script(HAPPY, filed=Filed(None, refused=True))
    full.run(make_call())
    notice = len(full.actions) - 2
    s = Script(HAPPY, filed=Filed(None, refused=True))
    end = s.run(make_call(), hangup_after=notice)
    assert end == Finish("refused", "28")
    assert s.actions.count(Discard("/rec/rec0.wav")) == 1


def test_every_outcome_the_flow_ranks_is_a_call_outcome_of_the_schema():
    from db.models import CALL_OUTCOMES
    from ivr.flow import OUTCOME_RANK

    assert sorted(OUTCOME_RANK) == sorted(CALL_OUTCOMES)


def test_every_prompt_of_the_menu_has_a_persian_text():
    from ivr.catalog import static_catalog

    ids = load_menu().prompt_ids()
    assert {"filed-limit-reached", "followup-limited"} <= ids
    assert ids <= set(static_catalog())


def test_hangup_after_every_step_leaves_no_stray_recording():
    full = Script(HAPPY)
    full.run(make_call())
    for k in range(len(full.actions)):
        s = Script(HAPPY)
        end = s.run(make_call(), hangup_after=k)
        assert isinstance(end, Finish)
        recorded = any(isinstance(a, Record) for a in s.actions)
        submitted = any(isinstance(a, FileComplaint) for a in s.actions)
        if recorded and not submitted:
            assert Discard("/rec/rec0.wav") in s.actions, k
        assert end.outcome == ("complaint_filed" if submitted else "abandoned"), k
        assert len([a for a in s.actions if isinstance(a, Finish)]) == 1


def test_menu_is_configuration(tmp_path):
    text = open(load_menu().source, encoding="utf-8").read()
    text = text.replace("timeout = 5.0", "timeout = 8.0").replace('"4" = "disrespect"', '"4" = "work_postponed"')
    (tmp_path / "menu.toml").write_text(text, encoding="utf-8")
    menu = load_menu(str(tmp_path / "menu.toml"), INDICATORS)
    s = Script(["1", "280101", "1", "4", "2", "1", ""])
    s.run(make_call(menu=menu))
    assert asks(s.actions)[0].timeout_ms == 8000
    assert filed(s.actions)[0].indicator_code == "work_postponed"


def test_menu_with_an_unknown_indicator_is_refused(tmp_path):
    text = open(load_menu().source, encoding="utf-8").read().replace('"4" = "disrespect"', '"4" = "rudeness"')
    (tmp_path / "menu.toml").write_text(text, encoding="utf-8")
    with pytest.raises(MenuError, match="rudeness"):
        load_menu(str(tmp_path / "menu.toml"), INDICATORS)


def test_tracking_codes_are_random_and_self_checking():
    codes = {new_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(is_well_formed(c) and len(c) == 10 for c in codes)
    code = new_code()
    for i in range(10):
        wrong = code[:i] + str((int(code[i]) + 1) % 10) + code[i + 1:]
        assert not is_well_formed(wrong)


# ---- the write overlapped with speech (issue 17) -----------------------------------------
def test_submitting_begins_the_write_then_speaks_then_reads_the_code_once_durable():
    s = Script(HAPPY)
    s.run(make_call())
    i = next(n for n, a in enumerate(s.actions) if isinstance(a, FileComplaint))
    # the write, at once the prompt that promises nothing, then the wait for durability
    assert s.actions[i + 1:i + 3] == [Play(("filed-wait",)), AwaitFiled()]
    code_read = next(n for n, a in enumerate(s.actions) if isinstance(a, Ask) and a.prompts[0] == "filed-code-is")
    assert code_read == i + 3
    assert not any(p.startswith("digits/") for a in s.actions[i:code_read]
                   if isinstance(a, (Ask, Play)) for p in a.prompts)


def test_a_journaled_complaint_is_read_back_like_a_stored_one():
    s = Script(HAPPY, filed=Filed(CODE, journaled=True))
    assert s.run(make_call()) == Finish("complaint_filed", "28")
    assert asks(s.actions)[-1].prompts[1:-1] == tuple(f"digits/{d}" for d in CODE)


def test_the_wait_prompt_needs_no_key_in_an_older_menu(tmp_path):
    text = open(load_menu().source, encoding="utf-8").read()
    text = "\n".join(line for line in text.splitlines() if not line.startswith("wait = "))
    (tmp_path / "menu.toml").write_text(text, encoding="utf-8")
    s = Script(HAPPY)
    s.run(make_call(menu=load_menu(str(tmp_path / "menu.toml"), INDICATORS)))
    assert Play(("filed-wait",)) in s.actions


def wait_prompt_call(filed):
    """A call hung up during the wait prompt: (call, the actions hangup() gave)."""
    call = make_call()
    s = Script(HAPPY, filed=filed)
    action = call.start()
    while action != Play(("filed-wait",)):
        action = call.send(s.answer(action))
    return call, call.hangup()


def test_a_hangup_during_the_write_waits_for_it_and_keeps_the_recording():
    call, left = wait_prompt_call(CODE)
    assert left[0] == AwaitFiled()
    assert not [a for a in left if isinstance(a, Discard)]  # the complaint's, not the call's
    assert call.settled(Filed(CODE)) == [Finish("complaint_filed", "28", language="fa")]


def test_a_hangup_during_a_write_that_failed_is_a_system_error_and_discards_the_recording():
    # neither stored nor journaled: nothing will ever refer to the caller's voice
    call, _ = wait_prompt_call(None)
    assert call.settled(Filed(None)) == [Discard("/rec/rec0.wav"), Finish("system_error", "28", language="fa")]


def test_a_hangup_during_a_refused_write_discards_the_recording():
    call, _ = wait_prompt_call(Filed(None, refused=True))
    assert call.settled(Filed(None, refused=True)) == [Discard("/rec/rec0.wav"),
                                                        Finish("refused", "28", language="fa")]


def test_a_provisional_finish_follows_the_wait_for_a_driver_that_cannot_learn_the_result():
    _, left = wait_prompt_call(CODE)
    assert isinstance(left[-1], Finish) and len(left) == 2
