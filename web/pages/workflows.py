"""The workflows list and the builder: triggers, steps (insert, edit, move, duplicate, delete), workflow
settings, publish / unpublish, version history, import / export.

Every edit is a form post that rebuilds the draft document and saves it through
``automations.documents.workflows.update_draft`` — the API's path — so an invalid edit saves nothing and
comes back with every problem by field. Reordering and inserting need no JavaScript.
"""

from __future__ import annotations

import copy
import json

from flask import Response, abort, flash, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import case, func, select
from werkzeug.utils import secure_filename

from actions import STEP_TYPES
from automations.documents import validation, workflows
from automations.documents.workflow_schema import SettingsSchema
from automations.errors import Conflict, ValidationError
from automations.store.models import Calendar, Enrollment, User, Workflow, WorkflowVersion
from automations.store.states import EnrollmentState
from triggers import TRIGGER_TYPES
from web.api.common import location, now, owned, tx
from web.pages import builder, forms, problems
from web.pages.base import bp, login_required

MAX_TAGS = 10
MAX_UPLOAD = 512 * 1024


# -- list ------------------------------------------------------------------------------------------


def enrollment_counts(s, workflow_ids: list[str]) -> dict[str, dict[str, int]]:
    """Per workflow: enrolled (all), active (active + waiting), completed, failed — one grouped query."""
    if not workflow_ids:
        return {}
    live = (EnrollmentState.ACTIVE.value, EnrollmentState.WAITING.value)
    rows = s.execute(
        select(Enrollment.workflow_id, func.count(),
               func.sum(case((Enrollment.state.in_(live), 1), else_=0)),
               func.sum(case((Enrollment.state == EnrollmentState.COMPLETED.value, 1), else_=0)),
               func.sum(case((Enrollment.state == EnrollmentState.FAILED.value, 1), else_=0)))
        .where(Enrollment.workflow_id.in_(workflow_ids)).group_by(Enrollment.workflow_id))
    return {wid: {"enrolled": n, "active": a or 0, "completed": c or 0, "failed": f or 0} for wid, n, a, c, f in rows}


@bp.get("/workflows")
@login_required
def workflow_list():
    tag = request.args.get("tag", "")[:50]
    with tx() as s:
        rows = list(s.scalars(select(Workflow).where(Workflow.location_id == g.location_id)
                              .order_by(Workflow.updated_at.desc(), Workflow.id)))
        all_tags = sorted({t for w in rows for t in (w.tags or [])})
        if tag:
            rows = [w for w in rows if tag in (w.tags or [])]
        versions = {v.id: v.number for v in s.scalars(select(WorkflowVersion).where(
            WorkflowVersion.id.in_([w.current_version_id for w in rows if w.current_version_id])))}
        counts = enrollment_counts(s, [w.id for w in rows])
        items = [{"id": w.id, "name": w.name, "status": w.status, "version": versions.get(w.current_version_id),
                  "tags": w.tags or [], "updated_at": w.updated_at,
                  "counts": counts.get(w.id, {"enrolled": 0, "active": 0, "completed": 0, "failed": 0})} for w in rows]
    return render_template("workflows.html", items=items, tags=all_tags, tag=tag)


@bp.post("/workflows")
@login_required
def workflow_create():
    name = request.form.get("name", "").strip() or "New workflow"
    with tx() as s:
        try:
            wf = workflows.create(s, location(s), {"version": 1, "name": name, "steps": []}, now=now())
        except ValidationError as exc:
            flash(f"Name: {exc.fields.get('name', [exc.message])[0]}", "error")
            return redirect(url_for("pages.workflow_list"))
        wid = wf.id
    flash("Workflow created. Add a trigger, then your first action.", "success")
    return redirect(url_for("pages.workflow_builder", workflow_id=wid))


@bp.post("/workflows/<workflow_id>/duplicate")
@login_required
def workflow_duplicate(workflow_id: str):
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        doc = copy.deepcopy(wf.draft)
        doc["name"] = f"Copy of {wf.name}"[:200]
        copy_wf = workflows.create(s, location(s), doc, now=now())
        copy_wf.tags = list(wf.tags or [])
        wid = copy_wf.id
    flash("Duplicated as a draft.", "success")
    return redirect(url_for("pages.workflow_builder", workflow_id=wid))


@bp.post("/workflows/<workflow_id>/delete")
@login_required
def workflow_delete(workflow_id: str):
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        try:
            workflows.delete_draft(s, wf)
        except Conflict as exc:
            flash(exc.message, "error")
            return redirect(url_for("pages.workflow_builder", workflow_id=workflow_id))
    flash("Draft deleted.", "success")
    return redirect(url_for("pages.workflow_list"))


# -- builder ---------------------------------------------------------------------------------------


def _save(s, wf: Workflow, doc: dict) -> list[problems.Problem]:
    """Save the draft; the problems (nothing saved) when it is invalid."""
    try:
        workflows.update_draft(s, wf, doc, now=now())
    except ValidationError as exc:  # raised before anything changed
        return problems.from_error(exc)
    return []


def _flow_context(s, wf: Workflow, doc: dict, *, readonly: bool = False) -> dict:
    steps = doc.get("steps", [])
    names = builder.step_names(steps)
    versions = list(s.scalars(select(WorkflowVersion).where(WorkflowVersion.workflow_id == wf.id)
                              .order_by(WorkflowVersion.number.desc())))
    current = next((v for v in versions if v.id == wf.current_version_id), None)
    cal_names = dict(s.execute(select(Calendar.id, Calendar.name).where(Calendar.location_id == wf.location_id)).all())
    return {"wf": wf, "doc": doc, "steps": steps, "names": names, "summary": builder.summary,
            "type_label": builder.type_label, "readonly": readonly, "current": current, "versions": versions,
            "calendar_names": cal_names, "trigger_label": lambda t: t.replace("_", " ").title(),
            "message_steps": builder.MESSAGE_STEPS, "guard": builder.guard}


@bp.get("/workflows/<workflow_id>")
@login_required
def workflow_builder(workflow_id: str):
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        found = []
        if request.args.get("check"):
            found = _publish_problems(s, wf)
        return render_template("builder.html", problems=_linked(wf.id, wf.draft, found), **_flow_context(s, wf, wf.draft))


def _publish_problems(s, wf: Workflow) -> list[problems.Problem]:
    return problems.check(s, wf.location_id, wf.draft)


def _linked(workflow_id: str, doc: dict, found: list[problems.Problem]) -> list[problems.Problem]:
    """Problems of the whole document, each linking to the form that fixes it."""
    out = []
    steps = doc.get("steps", [])
    for p in found:
        kind, i, rest = problems.split(p.path)
        field = rest.split("[", 1)[0] or "name"
        if kind == "step" and i is not None and i < len(steps):
            href = url_for("pages.step_edit", workflow_id=workflow_id, step_id=steps[i]["id"]) + "#" + problems.field_id(field)
        elif kind == "trigger" and i is not None:
            href = url_for("pages.trigger_edit", workflow_id=workflow_id, index=i) + "#" + problems.field_id(field)
        elif p.path.startswith("settings"):
            href = url_for("pages.workflow_settings", workflow_id=workflow_id) + "#" + problems.field_id(p.path.split("[", 1)[0])
        else:
            href = "#steps"
        out.append(problems.Problem(p.path, p.message, href))
    return out


def _known_paths(s):
    return validation.known_paths(location(s))


def _step_choices(s, doc: dict, step_id: str | None) -> dict:
    users = [(u.id, u.name or u.email) for u in s.scalars(select(User).where(User.location_id == g.location_id)
                                                          .order_by(User.created_at))]
    return {"steps": builder.step_choices(doc.get("steps", []), exclude=step_id), "user_ids": users}


def _step_form(s, wf: Workflow, step_type: str, step_id: str | None):
    fields_ = forms.describe(STEP_TYPES.get(step_type).schema(), choices=_step_choices(s, wf.draft, step_id))
    # "Then go to" last: most steps simply continue down the flow.
    return [f for f in fields_ if f.name != "next"] + [f for f in fields_ if f.name == "next"]


def _render_step(s, wf, step_type, step, *, at=None, found=(), status=200):
    summary, by_field = problems.for_form(list(found), kind="step", index=_index_of(wf.draft, step.get("id")))
    return render_template(
        "step_form.html", wf=wf, step_type=step_type, type_label=builder.type_label(step_type), step=step,
        fields=_step_form(s, wf, step_type, step.get("id")), at=at, problems=summary, errors=by_field,
        merge_groups=builder.merge_groups(_known_paths(s)), display=forms.display,
        field_id=problems.field_id, is_new=at is not None), status


def _index_of(doc: dict, step_id: str | None) -> int | None:
    for i, step in enumerate(doc.get("steps", [])):
        if step.get("id") == step_id:
            return i
    return None


def _at(doc: dict) -> int:
    try:
        at = int(request.values.get("at", len(doc.get("steps", []))))
    except ValueError:
        at = len(doc.get("steps", []))
    return max(0, min(at, len(doc.get("steps", []))))


@bp.route("/workflows/<workflow_id>/steps/new", methods=["GET", "POST"])
@login_required
def step_new(workflow_id: str):
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        at = _at(wf.draft)
        step_type = request.values.get("type")
        if not builder.known_step_type(step_type):
            return render_template("action_picker.html", wf=wf, at=at, groups=builder.ACTION_GROUPS)
        if request.method == "GET":
            return _render_step(s, wf, step_type, {"type": step_type, "name": builder.type_label(step_type)}, at=at)
        doc = copy.deepcopy(wf.draft)
        step = {"id": builder.new_step_id(doc["steps"], step_type), "type": step_type,
                **forms.parse(_step_form(s, wf, step_type, None), request.form)}
        doc["steps"].insert(at, step)
        found = _save(s, wf, doc)
        if found:
            return _render_step(s, wf, step_type, step, at=at, found=found, status=422)
    flash(f"{builder.type_label(step_type)} added.", "success")
    return redirect(url_for("pages.workflow_builder", workflow_id=workflow_id) + f"#step-{step['id']}")


@bp.route("/workflows/<workflow_id>/steps/<step_id>", methods=["GET", "POST"])
@login_required
def step_edit(workflow_id: str, step_id: str):
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        i = _index_of(wf.draft, step_id)
        if i is None:
            abort(404)
        step = wf.draft["steps"][i]
        if request.method == "GET":
            return _render_step(s, wf, step["type"], step)
        doc = copy.deepcopy(wf.draft)
        new_step = {"id": step_id, "type": step["type"], **forms.parse(_step_form(s, wf, step["type"], step_id), request.form)}
        doc["steps"][i] = new_step
        found = _save(s, wf, doc)
        if found:
            return _render_step(s, wf, step["type"], new_step, found=found, status=422)
    flash("Action saved.", "success")
    return redirect(url_for("pages.workflow_builder", workflow_id=workflow_id) + f"#step-{step_id}")


@bp.post("/workflows/<workflow_id>/steps/<step_id>/validate")
@login_required
def step_validate(workflow_id: str, step_id: str):
    """Live validation for the step form (fetch): the problems this form would cause, saving nothing."""
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        step_type = request.form.get("_type") or ""
        i = _index_of(wf.draft, step_id)
        if i is None and not builder.known_step_type(step_type):
            abort(404)
        if i is not None:
            step_type = wf.draft["steps"][i]["type"]
        doc = copy.deepcopy(wf.draft)
        new_id = step_id if i is not None else builder.new_step_id(doc["steps"], step_type)
        step = {"id": new_id, "type": step_type, **forms.parse(_step_form(s, wf, step_type, new_id), request.form)}
        at = i if i is not None else _at(doc)
        if i is None:
            doc["steps"].insert(at, step)
        else:
            doc["steps"][i] = step
        found = problems.check(s, wf.location_id, doc)
        own = [p for p in found if problems.split(p.path)[:2] == ("step", at)]
        summary, by_field = problems.for_form(own, kind="step", index=at)
        # The rest of the document's problems (another step, the triggers) link to the form that fixes them.
        summary += _linked(wf.id, doc, [p for p in found if p not in own])
        return jsonify({"problems": [{"path": p.path, "message": p.message, "href": p.href} for p in summary],
                        "fields": by_field})


@bp.post("/workflows/<workflow_id>/steps/<step_id>/<op>")
@login_required
def step_op(workflow_id: str, step_id: str, op: str):
    if op not in ("up", "down", "duplicate", "delete"):
        abort(404)
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        i = _index_of(wf.draft, step_id)
        if i is None:
            abort(404)
        doc = copy.deepcopy(wf.draft)
        steps = doc["steps"]
        if op == "up" and i > 0:
            steps[i - 1], steps[i] = steps[i], steps[i - 1]
        elif op == "down" and i < len(steps) - 1:
            steps[i + 1], steps[i] = steps[i], steps[i + 1]
        elif op == "duplicate":
            twin = copy.deepcopy(steps[i])
            twin["id"] = builder.new_step_id(steps, twin["type"])
            steps.insert(i + 1, twin)
        elif op == "delete":
            steps.pop(i)
        found = _save(s, wf, doc)
        if found:
            return render_template("builder.html", problems=_linked(wf.id, doc, found),
                                   **_flow_context(s, wf, wf.draft)), 422
    flash({"up": "Moved up.", "down": "Moved down.", "duplicate": "Duplicated.", "delete": "Deleted."}[op], "success")
    return redirect(url_for("pages.workflow_builder", workflow_id=workflow_id) + "#steps")


# -- triggers --------------------------------------------------------------------------------------


def _trigger_fields(s, trigger_type: str):
    calendars = [(c.id, c.name) for c in s.scalars(select(Calendar).where(Calendar.location_id == g.location_id)
                                                   .order_by(Calendar.name))]
    users = [(u.id, u.name or u.email) for u in s.scalars(select(User).where(User.location_id == g.location_id)
                                                          .order_by(User.created_at))]
    return forms.describe(TRIGGER_TYPES.get(trigger_type).filters_schema(), prefix="filters.",
                          choices={"calendars": calendars, "assigned_users": users})


def _render_trigger(s, wf, index, trigger, found=(), status=200):
    summary, by_field = problems.for_form(list(found), kind="trigger", index=index)
    ttype = trigger.get("type") or TRIGGER_TYPES.names()[0]
    return render_template("trigger_form.html", wf=wf, index=index, trigger=trigger, trigger_types=TRIGGER_TYPES.names(),
                           fields=_trigger_fields(s, ttype), problems=summary, errors=by_field,
                           display=forms.display, field_id=problems.field_id), status


def _trigger_index(doc: dict, index: str) -> int | None:
    if index == "new":
        return None
    if not index.isdigit() or int(index) >= len(doc.get("triggers", [])):
        abort(404)
    return int(index)


@bp.route("/workflows/<workflow_id>/triggers/<index>", methods=["GET", "POST"])
@login_required
def trigger_edit(workflow_id: str, index: str):
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        i = _trigger_index(wf.draft, str(index))
        current = wf.draft["triggers"][i] if i is not None else {"type": "appointment_status", "name": "Appointment",
                                                                  "filters": {}}
        if request.method == "GET":
            return _render_trigger(s, wf, i, current)
        ttype = request.form.get("type", "")
        if ttype not in TRIGGER_TYPES:
            return _render_trigger(s, wf, i, current, [problems.Problem("triggers[0].type", "choose a trigger")], 422)
        trigger = {"type": ttype, "name": request.form.get("name", "")[:1000],
                   **forms.parse(_trigger_fields(s, ttype), request.form)}
        trigger.setdefault("filters", {})
        doc = copy.deepcopy(wf.draft)
        if i is None:
            doc["triggers"].append(trigger)
        else:
            doc["triggers"][i] = trigger
        found = _save(s, wf, doc)
        if found:
            return _render_trigger(s, wf, i, trigger, found, 422)
    flash("Trigger saved.", "success")
    return redirect(url_for("pages.workflow_builder", workflow_id=workflow_id))


@bp.post("/workflows/<workflow_id>/triggers/<int:index>/delete")
@login_required
def trigger_delete(workflow_id: str, index: int):
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        doc = copy.deepcopy(wf.draft)
        if index >= len(doc["triggers"]):
            abort(404)
        doc["triggers"].pop(index)
        _save(s, wf, doc)
    flash("Trigger deleted.", "success")
    return redirect(url_for("pages.workflow_builder", workflow_id=workflow_id))


# -- settings, publish, versions ---------------------------------------------------------------------


def _settings_fields():
    return forms.describe(SettingsSchema(), prefix="settings.")


@bp.route("/workflows/<workflow_id>/settings", methods=["GET", "POST"])
@login_required
def workflow_settings(workflow_id: str):
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        doc = copy.deepcopy(wf.draft)
        found: list[problems.Problem] = []
        status = 200
        if request.method == "POST":
            doc["name"] = request.form.get("name", "")
            doc["description"] = request.form.get("description", "")
            doc.update(forms.parse(_settings_fields(), request.form))
            tags = [t.strip()[:50] for t in request.form.get("tags", "").split(",") if t.strip()]
            if len(tags) > MAX_TAGS:
                found.append(problems.Problem("tags", f"at most {MAX_TAGS} tags"))
            found += _save(s, wf, doc) if not found else []
            if not found:
                wf.tags = tags
                flash("Workflow settings saved.", "success")
                return redirect(url_for("pages.workflow_builder", workflow_id=workflow_id))
            status = 422
        summary, by_field = problems.for_form(found)
        return render_template("workflow_settings.html", wf=wf, doc=doc, fields=_settings_fields(), problems=summary,
                               errors=by_field, display=forms.display, field_id=problems.field_id,
                               tags=", ".join(request.form.get("tags", "").split(",")) if found else ", ".join(wf.tags or [])), status


@bp.post("/workflows/<workflow_id>/publish")
@login_required
def workflow_publish(workflow_id: str):
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        try:
            version = workflows.publish(s, wf, now=now())
        except ValidationError as exc:  # raised before anything changed
            return render_template("builder.html", problems=_linked(wf.id, wf.draft, problems.from_error(exc)),
                                   **_flow_context(s, wf, wf.draft)), 422
        version.published_by = g.user.id
        number = version.number
    flash(f"Published as version {number}. New appointments now enroll on it.", "success")
    return redirect(url_for("pages.workflow_builder", workflow_id=workflow_id))


@bp.post("/workflows/<workflow_id>/unpublish")
@login_required
def workflow_unpublish(workflow_id: str):
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        try:
            workflows.unpublish(s, wf, now=now())
        except Conflict as exc:
            flash(exc.message, "error")
            return redirect(url_for("pages.workflow_builder", workflow_id=workflow_id))
    flash("Unpublished: no new enrollments. Contacts already in it finish on their version.", "success")
    return redirect(url_for("pages.workflow_builder", workflow_id=workflow_id))


@bp.get("/workflows/<workflow_id>/versions")
@login_required
def workflow_versions(workflow_id: str):
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        versions = list(s.scalars(select(WorkflowVersion).where(WorkflowVersion.workflow_id == wf.id)
                                  .order_by(WorkflowVersion.number.desc())))
        who = dict(s.execute(select(User.id, User.email).where(
            User.id.in_([v.published_by for v in versions if v.published_by]))).all())
        return render_template("versions.html", wf=wf, versions=versions, who=who)


@bp.get("/workflows/<workflow_id>/versions/<int:number>")
@login_required
def workflow_version(workflow_id: str, number: int):
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        version = s.scalar(select(WorkflowVersion).where(WorkflowVersion.workflow_id == wf.id,
                                                         WorkflowVersion.number == number))
        if version is None:
            abort(404)
        return render_template("builder.html", problems=[], version=version,
                               **_flow_context(s, wf, version.document, readonly=True))


# -- import / export ---------------------------------------------------------------------------------


@bp.get("/workflows/<workflow_id>/export")
@login_required
def workflow_export(workflow_id: str):
    raw = request.args.get("version", "")
    version = int(raw) if raw.isdigit() and 0 < int(raw) < 2**31 else None
    with tx() as s:
        wf = owned(s, Workflow, workflow_id)
        document = workflows.export(s, wf, version)
        name = wf.name
    suffix = f"-v{version}" if version else ""
    return Response(json.dumps(document, indent=2, ensure_ascii=False) + "\n", mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="{secure_filename(name) or "workflow"}{suffix}.json"'})


@bp.route("/workflows/import", methods=["GET", "POST"])
@login_required
def workflow_import():
    if request.method == "GET":
        return render_template("import.html", problems=[])
    upload = request.files.get("file")
    found: list[problems.Problem] = []
    document = None
    if upload is None or not upload.filename:
        found.append(problems.Problem("file", "choose a workflow .json file"))
    else:
        data = upload.read(MAX_UPLOAD + 1)
        if len(data) > MAX_UPLOAD:
            found.append(problems.Problem("file", f"the file is larger than {MAX_UPLOAD // 1024} KB"))
        else:
            try:
                document = json.loads(data.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                found.append(problems.Problem("$", f"not a JSON file: {exc}"))
    if document is not None and isinstance(document, dict) and "workflow" in document and "steps" not in document:
        document = document["workflow"]  # a recipe file
    if not found:
        with tx() as s:
            try:
                wf = workflows.create(s, location(s), document, now=now())
                wid = wf.id
            except ValidationError as exc:
                found = problems.from_error(exc)
    if found:
        return render_template("import.html", problems=[problems.Problem(p.path, p.message, "#field-file")
                                                         for p in found]), 422
    flash("Imported as a draft.", "success")
    return redirect(url_for("pages.workflow_builder", workflow_id=wid))
