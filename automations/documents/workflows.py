"""Workflows: create and edit drafts, publish immutable versions, export and import documents."""

from __future__ import annotations

import copy
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from automations.documents.validation import checked_document
from automations.documents.workflow_schema import load_document
from automations.errors import Conflict, NotFound
from automations.store.db import get_in_location
from automations.store.models import Location, Workflow, WorkflowVersion
from automations.store.states import WorkflowStatus


def get(session: Session, location_id: str, workflow_id: str) -> Workflow:
    return get_in_location(session, Workflow, location_id, workflow_id, "workflow")


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


def publish(session: Session, wf: Workflow, *, now: datetime) -> WorkflowVersion:
    """Validate the draft fully (every problem at once, see ``validation``) and freeze it as the next
    version. A draft identical to the latest version publishes that version again: no new number."""
    doc = checked_document(session, wf.location_id, wf.draft)
    latest = session.get(WorkflowVersion, wf.current_version_id) if wf.current_version_id else None
    if latest is not None and latest.document == doc:
        version = latest
    else:
        number = (session.scalar(select(func.max(WorkflowVersion.number))
                                 .where(WorkflowVersion.workflow_id == wf.id)) or 0) + 1
        version = WorkflowVersion(workflow_id=wf.id, number=number, document=copy.deepcopy(doc), published_at=now)
        session.add(version)
        session.flush()
        wf.current_version_id = version.id
    if wf.status != WorkflowStatus.PUBLISHED or version is not latest:
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
