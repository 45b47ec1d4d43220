"""Merge fields: syntax, fallbacks, literal text, hostile templates, escaping, and the context built
from models (time zones across DST, phone formats, the Google Calendar link, unknown paths).

Pure unit tests: model objects are built in memory, no database session.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from automations.rendering import merge_fields as mf
from automations.rendering.merge_fields import KnownPaths, paths, render, unknown_paths, uses_path, validate
from automations.rendering.render_context import build_condition_facts, build_context, pick_timezone
from automations.store.models import Appointment, Calendar, Contact, Location, User

NOW = datetime(2026, 1, 2, 17, 4, tzinfo=UTC)  # Friday, noon-ish in New York


def make_location(**kw) -> Location:
    values = dict(
        name="Bright Smiles",
        timezone="America/New_York",
        email="front@brightsmiles.test",
        phone="+14155550100",
        address="1 Main St",
        website="https://brightsmiles.test",
        custom_values={"promo_code": "SPRING10"},
        custom_field_keys=["pet_name"],
    )
    values.update(kw)
    return Location(**values)


def make_contact(**kw) -> Contact:
    values = dict(
        first_name="Ann",
        last_name="Lee",
        email="ann@example.test",
        phone="+14155550123",
        timezone="America/New_York",
        tags=["vip", "new"],
        custom_fields={"pet_name": "Rex", "email": "shadow@example.test"},
    )
    values.update(kw)
    return Contact(**values)


def make_user(**kw) -> User:
    values = dict(
        first_name="Bob",
        last_name="Ray",
        email="bob@brightsmiles.test",
        phone="+442071838750",
        timezone="Europe/London",
    )
    values.update(kw)
    return User(**values)


def make_appointment(start: datetime, end: datetime, **kw) -> Appointment:
    values = dict(
        title="Cleaning & check-up",
        start_at=start,
        end_at=end,
        timezone="America/New_York",
        status="confirmed",
        notes="Bring your <insurance> card",
        rescheduled=False,
    )
    values.update(kw)
    return Appointment(**values)


JANUARY = (datetime(2026, 1, 5, 20, 0, tzinfo=UTC), datetime(2026, 1, 5, 20, 30, tzinfo=UTC))
JULY = (datetime(2026, 7, 6, 19, 0, tzinfo=UTC), datetime(2026, 7, 6, 19, 45, tzinfo=UTC))


def context_for(appointment: Appointment | None = None, recipient_tz: str = "America/New_York", **kw) -> dict:
    args = dict(
        location=make_location(),
        contact=make_contact(),
        appointment=appointment if appointment is not None else make_appointment(*JANUARY),
        calendar=Calendar(name="Hygiene"),
        assigned_user=make_user(),
        recipient_tz=recipient_tz,
        now=NOW,
        links={"cancellation_link": "https://p.test/c/abc", "reschedule_link": "https://p.test/r/abc"},
        meeting_location="https://zoom.us/j/123?pwd=x",
    )
    args.update(kw)
    return build_context(**args)


# -- syntax ---------------------------------------------------------------------------------------------


def test_both_syntaxes_render_the_same_value():
    ctx = context_for()
    curly = render("Join: {{appointment.meeting_location}} / {{ contact.first_name }}", ctx)
    angled = render("Join: <<appointment.meeting_location>> / << contact.first_name >>", ctx)
    assert curly == angled == "Join: https://zoom.us/j/123?pwd=x / Ann"


def test_default_applies_to_missing_none_and_empty_but_not_to_values():
    ctx = {"contact": {"first_name": "", "last_name": None, "email": "a@b.test"}, "appointment": {}}
    text = (
        '{{contact.first_name | default("there")}}|{{contact.last_name|default("x")}}|'
        "{{contact.nickname | default('pal')}}|{{ nowhere.at.all | default(\"void\") }}|"
        '{{contact.email | default("none")}}'
    )
    assert render(text, ctx) == "there|x|pal|void|a@b.test"
    # Without a fallback, missing values render empty.
    assert render("[{{contact.nickname}}][<<contact.last_name>>]", ctx) == "[][]"


def test_default_keeps_false_and_zero():
    ctx = {"appointment": {"rescheduled": False}, "custom_values": {"count": 0}}
    assert render('{{appointment.rescheduled | default("?")}} {{custom_values.count|default("?")}}', ctx) == (
        "false 0"
    )


def test_allowed_filters_work():
    ctx = {"contact": {"first_name": "  ann marie  ", "city": "NEW YORK"}}
    assert render("{{ contact.first_name | trim | title }}", ctx) == "Ann Marie"
    assert render("{{ contact.city | lower | capitalize }}", ctx) == "New york"
    assert render("{{ contact.first_name | trim | upper }}", ctx) == "ANN MARIE"
    assert render("{{ contact.city | truncate(6, True, '...', 0) }}", ctx) == "NEW..."


def test_paths_are_case_sensitive():
    ctx = context_for()
    assert render("{{contact.first_name}}", ctx) == "Ann"
    assert render("[{{Contact.first_name}}][{{contact.First_Name}}]", ctx) == "[][]"
    known = KnownPaths.for_location(["pet_name"], ["promo_code"])
    assert unknown_paths(paths("{{Contact.first_name}} {{contact.first_name}}"), known) == [
        "Contact.first_name"
    ]
    assert mf.suggestion("Contact.first_name", known) == "contact.first_name"


def test_booleans_render_as_true_false():
    ctx = context_for(make_appointment(*JANUARY, rescheduled=True))
    assert render("{{appointment.rescheduled}}", ctx) == "true"
    assert render("{{appointment.rescheduled}}", context_for()) == "false"


# -- literal text ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "{% if contact.vip %}VIP{% endif %}",
        "{# a comment #} and {%- raw -%}",
        "Prices {{ start here and",
        "a lone }} and a lone >> and a lone <<",
        "{{ spans\nlines }}",
        "{% for x in range(10**9) %}{% endfor %}",
        "50% off {%",
        "{{ contact.first_name }",
    ],
)
def test_non_field_text_is_literal(text):
    assert render(text, context_for()) == text
    assert paths(text) == set()


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("Hi {{ contact.first_name ", "not closed with }}"),
        ("Hi {{ contact.first_name }", "not closed with }}"),
        ("Hi << contact.first_name", "not closed with >>"),
        ("{{ spans\nlines }}", "not closed with }}"),
        ("{% for x in contact.tags %}{{x}}{% endfor %}", "template tags"),
        ("{%- raw -%}", "template tags"),
        ("{% if contact.vip %}VIP{% endif %}", "template tags"),
    ],
)
def test_unclosed_fields_and_template_tags_are_reported(text, needle):
    problems = validate(text)
    assert any(needle in p for p in problems), problems
    assert render(text, context_for()) in (text, text.replace("{{x}}", ""))  # still never evaluated


@pytest.mark.parametrize("text", ["50% off {%", "a lone }} and a lone >> and a lone <<"])
def test_prose_that_only_resembles_syntax_is_fine(text):
    assert validate(text) == []
    assert render(text, context_for()) == text


@pytest.mark.parametrize(
    "body",
    [
        "{{" * (512 * 1024),
        "<<" * (512 * 1024),
        "{{<<" * (256 * 1024),
        ("{{ contact.first_name }}" + "{{" * 1000 + "\n") * 520,
        "{{" + "x" * (1024 * 1024) + "}}",
    ],
    ids=["open-braces", "open-angles", "mixed", "lines", "one-huge-field"],
)
def test_scanning_a_1mib_worst_case_body_is_linear(body):
    import time as _time

    assert len(body) >= 1024 * 1024 - 100
    started = _time.perf_counter()
    scan = mf._scan(body)
    elapsed = _time.perf_counter() - started
    assert elapsed < 0.5, elapsed
    assert "".join(t if isinstance(t, str) else t.raw for t in scan.tokens) == body
    started = _time.perf_counter()
    validate(body)
    render(body, context_for())
    assert _time.perf_counter() - started < 0.5


def test_scan_matches_the_old_regex_on_tricky_texts():
    import re as _re

    old = _re.compile(r"\{\{([^\n]*?)\}\}|<<([^\n]*?)>>")
    for text in ["{{{x}}}", "<<{{a}}>>", "{{ a << b }} >>", "{{a}}{{b}}", "<<a\n>>{{b}}", "{{ <<x>>", "}}{{a}}<<"]:
        expected = [m.group(0) for m in old.finditer(text)]
        assert [t.raw for t in mf._scan(text).tokens if not isinstance(t, str)] == expected, text


def test_rendered_output_is_capped():
    ctx = {"contact": {"notes": "x" * 10_000}}
    text = "{{contact.notes}}" * 1000
    assert len(render(text, ctx)) == mf.MAX_RENDERED_CHARS


def test_jinja_block_syntax_around_a_field_stays_literal():
    text = "{% if x %}Hi {{contact.first_name}}{% endif %} {# keep #}"
    assert render(text, context_for()) == "{% if x %}Hi Ann{% endif %} {# keep #}"


def test_literal_text_is_not_escaped_but_values_are():
    ctx = {"contact": {"first_name": "<b>Ann & Co</b>", "quote": 'say "hi"'}}
    text = "<p>Hello {{contact.first_name}}, {{ contact.quote }}</p>"
    assert render(text, ctx, escape_html=True) == (
        "<p>Hello &lt;b&gt;Ann &amp; Co&lt;/b&gt;, say &quot;hi&quot;</p>"
    )
    assert render(text, ctx) == '<p>Hello <b>Ann & Co</b>, say "hi"</p>'


def test_escaping_also_covers_fallbacks():
    assert render('{{contact.x | default("<i>you</i>")}}', {"contact": {}}, escape_html=True) == (
        "&lt;i&gt;you&lt;/i&gt;"
    )


# -- hostile templates ------------------------------------------------------------------------------------

HOSTILE = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ contact.__class__ }}",
    "{{ contact._sa_instance_state }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ 7*7 }}",
    "<< 7*7 >>",
    "{{ lipsum() }}",
    "{{ range(10) }}",
    "{{ contact['first_name'] }}",
    "{{ contact.first_name ~ 'x' }}",
    "{{ contact.first_name if 1 else 2 }}",
    "{{ 'abc' }}",
    "{{ contact.first_name | attr('__class__') }}",
    "{{ contact.first_name | safe }}",
    "{{ contact.first_name | format(1) }}",
    "{{ contact.first_name | default(contact.__class__) }}",
    "{{ contact.first_name | default(*x) }}",
    "{{ (1).__class__ }}",
    "{{ contact.first_name | truncate('x') }}",
    "{{ }}",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_templates_are_rejected_and_render_nothing(text):
    problems = validate(text)
    assert problems, text
    assert all(p.startswith(("{{", "<<")) for p in problems)
    assert paths(text) == set()
    rendered = render(f"before {text} after", context_for())
    assert rendered.startswith("before ")
    assert rendered.endswith(" after")
    leaked = rendered[len("before ") : -len(" after")]
    # Only the (malformed) literal may remain, never an evaluated result.
    for marker in ("class", "49", "function", "object at", "Lorem", "range(", "Ann"):
        assert marker not in leaked or marker in text


def test_validate_message_names_the_field_and_the_rule():
    assert validate("Hi {{ ''.__class__ }}") == [
        "{{ ''.__class__ }}: only merge fields like {{ contact.first_name }} are allowed"
    ]
    assert "'safe' is not allowed" in validate("{{ contact.first_name | safe }}")[0]


@pytest.mark.parametrize(
    "text",
    [
        "{{ contact.items }}",
        "{{ contact }}",
        "{{ range }}",
        "{{ cycler }}",
        "{{ lipsum }}",
        "{{ self }}",
        "{{ appointment.title.upper }}",
    ],
)
def test_valid_looking_names_cannot_reach_python_objects(text):
    # These are syntactically paths, but dict/str methods, whole dicts and Jinja's globals never
    # render, not even when a filter turns them into text.
    assert validate(text) == []
    assert render(text, context_for()) == ""
    assert render(text.replace(" }}", " | upper }}"), context_for()) == ""
    assert render(text.replace(" }}", ' | default("x") | title }}'), context_for()) in ("", "X")


def test_model_objects_in_the_context_are_not_reachable():
    # Even if a caller wrongly put a model object in the context, attribute access stays dict-only.
    assert render("[{{ contact.first_name }}][{{ contact }}]", {"contact": make_contact()}) == "[][]"


def test_very_long_input_is_rejected_and_rendering_is_bounded():
    text = "{{ contact.first_name }} " + "x" * (mf.MAX_TEMPLATE_CHARS + 5_000)
    problems = validate(text)
    assert any("limit is 20,000" in p for p in problems)
    rendered = render(text, context_for())
    assert rendered.startswith("Ann ")
    assert len(rendered) <= mf.MAX_TEMPLATE_CHARS
    assert validate("x" * mf.MAX_TEMPLATE_CHARS) == []


@pytest.mark.parametrize(
    "text",
    [
        "{{ " + "(" * 3000 + "contact.first_name" + ")" * 3000 + " }}",
        "{{ " + "(" * 240 + "a" + ")" * 240 + " }}",
        "{{ " + "[" * 240 + " }}",
        "{{ contact" + ".a" * 240 + " }}",
        "{{ contact.first_name" + " | upper" * 60 + " }}",
    ],
)
def test_deeply_nested_fields_fail_validation_without_raising(text):
    assert validate(text)
    assert render(f"<{text}>", context_for()) == "<>"


# -- paths, unknown paths -------------------------------------------------------------------------------


def test_paths_and_uses_path():
    text = "Hi <<contact.first_name>>, {{ appointment.meeting_location | default('TBA') }} {{ 7*7 }}"
    assert paths(text) == {"contact.first_name", "appointment.meeting_location"}
    assert uses_path(text, "appointment.meeting_location")
    assert uses_path("<<appointment.meeting_location>>", "appointment.meeting_location")
    assert not uses_path(
        "{{ appointment.title }} appointment.meeting_location", "appointment.meeting_location"
    )
    assert not uses_path("{{ appointment.meeting_location.x }}", "appointment.meeting_location")


def test_unknown_paths_including_custom_fields_and_values():
    known = KnownPaths.for_location(custom_field_keys=["pet_name"], custom_value_keys=["promo_code"])
    text = (
        "{{contact.pet_name}} {{contact.shoe_size}} {{custom_values.promo_code}} {{custom_values.nope}} "
        "{{appointment.user.email}} {{appointment.meeting_location}} {{right_now.year}} {{calendar.name}} "
        "{{location.website}} {{user.phone}} {{contact.phone_raw}} {{appointment.zoom}} {{Contact.first_name}} "
        "{{contact.pet_name.breed}} {{contact}}"
    )
    assert unknown_paths(paths(text), known) == [
        "Contact.first_name",
        "appointment.zoom",
        "contact",
        "contact.pet_name.breed",
        "contact.shoe_size",
        "custom_values.nope",
    ]
    # Without the location's keys, its custom fields and values are unknown too.
    assert "contact.pet_name" in unknown_paths(paths(text), KnownPaths.for_location())
    assert "custom_values.promo_code" in unknown_paths(paths(text), KnownPaths.for_location())


def test_every_documented_path_is_known_and_present_in_the_context():
    known = KnownPaths.for_location(["pet_name"], ["promo_code"])
    ctx = context_for()
    for path in known.all_paths():
        node = ctx
        for part in path.split("."):
            assert isinstance(node, dict) and part in node, path
            node = node[part]


# -- the context: times -------------------------------------------------------------------------------------


def test_times_in_new_york_across_dst():
    jan = context_for(make_appointment(*JANUARY))["appointment"]
    assert jan["start_time"] == "Monday, January 5, 2026 at 3:00 PM EST"
    assert jan["end_time"] == "Monday, January 5, 2026 at 3:30 PM EST"
    assert jan["only_start_date"] == "Monday, January 5, 2026"
    assert jan["only_start_time"] == "3:00 PM EST"
    assert jan["day_of_week"] == "Monday"
    assert jan["month"] == "January"
    assert jan["timezone"] == "America/New_York"

    jul = context_for(make_appointment(*JULY))["appointment"]
    # 19:00 UTC is 3:00 PM in July (EDT, UTC-4) just as 20:00 UTC is in January (EST, UTC-5).
    assert jul["start_time"] == "Monday, July 6, 2026 at 3:00 PM EDT"
    assert jul["end_time"] == "Monday, July 6, 2026 at 3:45 PM EDT"
    assert jul["month"] == "July"


def test_an_appointment_spanning_the_spring_forward():
    # 2026-03-08 02:00 EST clocks jump to 03:00 EDT.
    appt = make_appointment(datetime(2026, 3, 8, 6, 30, tzinfo=UTC), datetime(2026, 3, 8, 7, 30, tzinfo=UTC))
    ctx = context_for(appt)["appointment"]
    assert ctx["only_start_time"] == "1:30 AM EST"
    assert ctx["end_time"] == "Sunday, March 8, 2026 at 3:30 AM EDT"


def test_times_render_in_the_recipients_zone():
    london = context_for(make_appointment(*JANUARY), recipient_tz="Europe/London")["appointment"]
    assert london["start_time"] == "Monday, January 5, 2026 at 8:00 PM GMT"
    assert london["timezone"] == "Europe/London"
    kolkata = context_for(make_appointment(*JANUARY), recipient_tz="Asia/Kolkata")["appointment"]
    # The date moves too: 20:00 UTC Monday is 01:30 Tuesday in India.
    assert kolkata["start_time"] == "Tuesday, January 6, 2026 at 1:30 AM IST"
    assert kolkata["day_of_week"] == "Tuesday"


def test_no_leading_zero_and_noon_midnight():
    morning = make_appointment(
        datetime(2026, 1, 5, 14, 5, tzinfo=UTC), datetime(2026, 1, 5, 17, 0, tzinfo=UTC)
    )
    ctx = context_for(morning)["appointment"]
    assert ctx["only_start_time"] == "9:05 AM EST"
    assert ctx["end_time"].endswith("at 12:00 PM EST")
    midnight = make_appointment(
        datetime(2026, 1, 6, 5, 0, tzinfo=UTC), datetime(2026, 1, 6, 6, 0, tzinfo=UTC)
    )
    assert context_for(midnight)["appointment"]["only_start_time"] == "12:00 AM EST"


def test_invalid_recipient_zone_falls_back_to_utc():
    ctx = context_for(make_appointment(*JANUARY), recipient_tz="Mars/Olympus_Mons")
    assert ctx["appointment"]["start_time"] == "Monday, January 5, 2026 at 8:00 PM UTC"
    assert ctx["appointment"]["timezone"] == "UTC"
    assert context_for(recipient_tz="")["appointment"]["timezone"] == "UTC"
    assert pick_timezone(None, "bogus", "Europe/Paris") == "Europe/Paris"


def test_right_now_uses_the_given_now_in_the_recipients_zone():
    right_now = context_for()["right_now"]
    assert right_now == {
        "date": "Friday, January 2, 2026",
        "time": "12:04 PM EST",
        "day_of_week": "Friday",
        "month": "January",
        "year": "2026",
        "day": "2",
    }
    assert render(
        "{{right_now.year}}-{{right_now.day}}", context_for(now=datetime(2030, 5, 9, 12, tzinfo=UTC))
    ) == ("2030-9")


# -- the context: people, links, location -----------------------------------------------------------------


def test_contact_user_location_and_custom_values():
    ctx = context_for()
    assert ctx["contact"]["name"] == "Ann Lee"
    assert ctx["contact"]["phone"] == "+1 415-555-0123"
    assert ctx["contact"]["phone_raw"] == "+14155550123"
    assert ctx["contact"]["pet_name"] == "Rex"
    # A custom field named like a built-in field never shadows it.
    assert ctx["contact"]["email"] == "ann@example.test"
    assert "tags" not in ctx["contact"]
    assert ctx["user"]["name"] == "Bob Ray"
    assert ctx["user"]["phone"] == "+44 20 7183 8750"
    assert ctx["appointment"]["user"] == ctx["user"]
    assert ctx["calendar"] == {"name": "Hygiene"}
    assert ctx["location"]["name"] == "Bright Smiles"
    assert ctx["location"]["phone"] == "+1 415-555-0100"
    assert ctx["custom_values"] == {"promo_code": "SPRING10"}
    text = "{{appointment.user.first_name}} {{user.email}} {{custom_values.promo_code}} {{location.address}}"
    assert render(text, ctx) == "Bob bob@brightsmiles.test SPRING10 1 Main St"


def test_links_meeting_location_status_and_notes():
    ctx = context_for()
    appt = ctx["appointment"]
    assert appt["cancellation_link"] == "https://p.test/c/abc"
    assert appt["reschedule_link"] == "https://p.test/r/abc"
    assert appt["meeting_location"] == "https://zoom.us/j/123?pwd=x"
    assert appt["status"] == "confirmed"
    assert appt["notes"] == "Bring your <insurance> card"
    bare = context_for(links=None, meeting_location=None)["appointment"]
    assert bare["meeting_location"] == bare["cancellation_link"] == ""


def test_missing_roots_are_empty_and_render_empty():
    ctx = build_context(location=make_location(), recipient_tz="UTC", now=NOW)
    assert ctx["contact"] == ctx["appointment"] == ctx["user"] == ctx["calendar"] == {}
    assert render("[{{contact.first_name}}][{{appointment.start_time}}][{{user.name}}]", ctx) == "[][][]"


def test_context_holds_only_plain_values():
    def check(value):
        if isinstance(value, dict):
            for k, v in value.items():
                assert isinstance(k, str)
                check(v)
        elif isinstance(value, list):
            for v in value:
                check(v)
        else:
            assert value is None or type(value) in (str, int, float, bool), repr(value)

    odd = make_contact(
        custom_fields={"when": datetime(2026, 1, 1, tzinfo=UTC), "nested": {"a": [1, object()]}}
    )
    ctx = context_for(contact=odd)
    check(ctx)
    assert ctx["contact"]["when"] == "2026-01-01 00:00:00+00:00"


def test_add_to_google_calendar_url():
    url = context_for(make_appointment(*JANUARY))["appointment"]["add_to_google_calendar"]
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "calendar.google.com", "/calendar/render")
    assert "&dates=20260105T200000Z/20260105T203000Z&" in url
    query = parse_qs(parts.query)
    assert query == {
        "action": ["TEMPLATE"],
        "text": ["Cleaning & check-up"],
        "dates": ["20260105T200000Z/20260105T203000Z"],
        "details": ["Bring your <insurance> card"],
        "location": ["https://zoom.us/j/123?pwd=x"],
    }
    # UTC stamps do not depend on the recipient's zone.
    kolkata = context_for(make_appointment(*JANUARY), recipient_tz="Asia/Kolkata")
    assert kolkata["appointment"]["add_to_google_calendar"] == url
    # In an HTML email the link's "&" are escaped so the href stays intact.
    assert "&amp;dates=" in render("{{appointment.add_to_google_calendar}}", context_for(), escape_html=True)


# -- condition facts -----------------------------------------------------------------------------------------


def test_condition_facts_are_raw():
    appt = make_appointment(*JANUARY, rescheduled=True)
    facts = build_condition_facts(
        location=make_location(),
        contact=make_contact(),
        appointment=appt,
        calendar=Calendar(name="Hygiene"),
        assigned_user=make_user(),
        recipient_tz="America/New_York",
        now=NOW,
    )
    start = facts["appointment"]["start_time"]
    assert isinstance(start, datetime) and start.tzinfo is not None
    assert start == JANUARY[0] and start.hour == 15  # same instant, local wall clock
    assert facts["appointment"]["end_time"] == JANUARY[1]
    assert facts["appointment"]["only_start_date"] == date(2026, 1, 5)
    assert facts["appointment"]["rescheduled"] is True
    assert facts["appointment"]["status"] == "confirmed"
    assert facts["contact"]["tags"] == ["vip", "new"]
    assert facts["contact"]["phone"] == "+14155550123"
    assert facts["contact"]["pet_name"] == "Rex"
    assert facts["right_now"]["datetime"] == NOW
    assert facts["right_now"]["year"] == 2026


# -- caching (speed itself is measured in bench/, not asserted here) ------------------------------------------


def test_rendering_reuses_compiled_fields():
    from automations.rendering import merge_fields

    text = "Hi {{contact.first_name | default('there')}} on {{appointment.start_time}} <<appointment.meeting_location>>"
    ctx = context_for()
    merge_fields._compile_field.cache_clear()
    merge_fields._scan_cached.cache_clear()
    for _ in range(50):
        render(text, ctx, escape_html=True)
    # Three fields compiled once each; every later render is a cache hit.
    assert merge_fields._compile_field.cache_info().misses == 3
    assert merge_fields._scan_cached.cache_info().hits == 49
