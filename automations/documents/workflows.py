"""Workflows: create and edit drafts, publish immutable versions, export and import documents."""

from __future__ import annotations

import copy
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from automations.documents.workflow_schema import check_publishable, load_document
from automations.errors import Conflict, NotFound
from automations.rendering import merge_fields
from automations.store.models import Calendar, Location, User, Workflow, WorkflowVersion
from automations.store.states import WorkflowStatus


def get(session: Session, location_id: str, workflow_id: str) -> Workflow:
    wf = session.get(Workflow, workflow_id)
    if wf is None or wf.location_id != location_id:
        raise NotFound(f"no workflow {workflow_id!r}")
    return wf


def create(session: Session, location: Location, document: dict, *, now: datetime) -> Workflow:
    """A new draft from a document (validated first: nothing is saved when it is invalid)."""
    doc = load_document(document)
    wf = Workflow(location_id=location.id, name=doc["name"], status=WorkflowStatus.DRAFT, draft=doc,
                  created_at=now, updated_at=now)
    session.add(wf)
    session.flush()
    return wf


def update_draft(session: Session, wf: Workflow, document: dict, *, now: datetime) -> Workflow:
    doc = load_document(document)
    wf.draft = doc
    wf.name = doc["name"]
    wf.updated_at = now
    return wf


def known_paths(location: Location) -> merge_fields.KnownPaths:
    return merge_fields.KnownPaths.for_location(location.custom_field_keys or [], list((location.custom_values or {}).keys()))


def publish(session: Session, wf: Workflow, *, now: datetime) -> WorkflowVersion:
    """Validate the draft fully (merge paths, ids) and freeze it as the next version."""
    location = session.get(Location, wf.location_id)
    doc = load_document(wf.draft)
    calendars = set(session.scalars(select(Calendar.id).where(Calendar.location_id == location.id)))
    users = set(session.scalars(select(User.id).where(User.location_id == location.id)))
    check_publishable(doc, known=known_paths(location), calendar_ids=calendars, user_ids=users)
    number = (session.scalar(select(func.max(WorkflowVersion.number)).where(WorkflowVersion.workflow_id == wf.id)) or 0) + 1
    version = WorkflowVersion(workflow_id=wf.id, number=number, document=copy.deepcopy(doc), published_at=now)
    session.add(version)
    session.flush()
    wf.current_version_id = version.id
    wf.status = WorkflowStatus.PUBLISHED
    wf.updated_at = now
    return version


def unpublish(session: Session, wf: Workflow, *, now: datetime) -> None:
    """Back to draft: no new enrollments; running ones finish on their version."""
    if wf.status != WorkflowStatus.PUBLISHED:
        raise Conflict("workflow is not published", fields={"status": [wf.status]})
    wf.status = WorkflowStatus.DRAFT
    wf.updated_at = now


def delete_draft(session: Session, wf: Workflow) -> None:
    """Delete a workflow that was never published (published ones keep their history)."""
    ever_published = session.scalar(select(func.count()).select_from(WorkflowVersion).where(WorkflowVersion.workflow_id == wf.id))
    if ever_published:
        raise Conflict("a workflow that has been published cannot be deleted; unpublish it instead",
                       fields={"status": [wf.status]})
    session.delete(wf)


def export(session: Session, wf: Workflow, version: int | None = None) -> dict:
    """The document of the draft, or of a published version number."""
    if version is None:
        return copy.deepcopy(wf.draft)
    row = session.scalar(select(WorkflowVersion).where(WorkflowVersion.workflow_id == wf.id, WorkflowVersion.number == version))
    if row is None:
        raise NotFound(f"workflow {wf.id!r} has no version {version}")
    return copy.deepcopy(row.document)
