"""Alias and implication rules (docs/tags.md#aliases, docs/tags.md#implications).

Rules never rewrite assignments: activating or retiring one changes rule rows in a single
transaction, flags the items whose tags it touches as stale, and queues a rebuild of their
effective tags. So retiring a rule restores the previous effective tags exactly.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from django.db import transaction
from django.db.models import Q

from apps.core.exceptions import ConflictError, DomainError, ForbiddenError
from apps.jobs import services as job_services
from apps.jobs.models import Job
from apps.media.models import MediaItem
from apps.tags.models import (
    AliasResolution,
    Operation,
    RuleStatus,
    Tag,
    TagAlias,
    TagClosure,
    TagImplication,
    Vocabulary,
)
from apps.tags.services.effective import effective_mark_stale_for_tags, effective_rebuild_stale
from apps.tags.services.names import tag_name_normalise, tags_get_or_create, vocabulary_default

REBUILD_JOB_KIND = "tags.effective_rebuild"
REBUILD_TASK = "tags.effective_rebuild"


class RuleError(DomainError):
    default_code = "tags.invalid_rule"


APPROVE_PERM = "tags.approve_rules"


def rules_may_approve(actor: Any) -> bool:
    """The approval policy for aliases and implications (docs/tags.md#aliases), in one place:
    people with `tags.approve_rules` activate, retire and reject rules; others propose, and
    their proposals wait. A call without an actor is the system (shell, migrations, jobs)."""
    if actor is None:
        return True
    return bool(getattr(actor, "is_authenticated", False) and actor.has_perm(APPROVE_PERM))


def _require_approver(actor: Any) -> None:
    if not rules_may_approve(actor):
        raise ForbiddenError(
            "Activating, retiring or rejecting rules needs permission to approve rules.",
            code="tags.approve_rules_required",
        )


def _tag(vocabulary: Vocabulary, name: str) -> Tag:
    clean = tag_name_normalise(raw=name, vocabulary=vocabulary)
    return tags_get_or_create(vocabulary=vocabulary, names=[clean])[clean]


def _log(kind: str, summary: str, params: dict[str, Any], actor: Any) -> Operation:
    return Operation.objects.create(
        kind=Operation.Kind.RULE_CHANGE,
        status=Operation.Status.APPLIED,
        params={"rule": kind, **params},
        summary=summary[:500],
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )


@transaction.atomic
def effective_rebuild_start(*, actor: Any = None, reason: str = "", everything: bool = False) -> Job | None:
    """Queue a rebuild of stale items unless one is already waiting (after commit); `everything`
    first marks every item stale (a full rebuild)."""
    if everything:
        MediaItem.objects.filter(effective_stale=False).update(effective_stale=True)
    waiting = Job.objects.filter(kind=REBUILD_JOB_KIND, status=Job.Status.QUEUED).first()
    if waiting is not None:
        return waiting
    total = MediaItem.objects.filter(effective_stale=True).count()
    return job_services.job_start(
        title="Effective-tag rebuild",
        kind=REBUILD_JOB_KIND,
        task=REBUILD_TASK,
        params={"reason": reason[:200]},
        created_by=actor,
        total=total,
    )


def effective_rebuild_run(*, job_id: int) -> None:
    """Rebuild every stale item's effective tags, a chunk per transaction, reporting progress."""
    job = job_services.job_claim(job_id=job_id)
    if job is None:
        return

    def progress(done: int) -> None:
        job_services.job_progress(job=job, done=done, total=max(done, job.progress_total))

    rebuilt = effective_rebuild_stale(on_chunk=progress)
    job_services.job_finish(job=job, result={"rebuilt": rebuilt})


# --- aliases --------------------------------------------------------------------------------


def _alias_check(alias: TagAlias) -> None:
    antecedent, consequent = alias.antecedent_id, alias.consequent_id
    if antecedent == consequent:
        raise RuleError("A tag cannot be an alias of itself.")
    if TagAlias.objects.filter(active_antecedent_id=consequent).exists():
        target = TagAlias.objects.get(active_antecedent_id=consequent)
        raise RuleError(
            f"'{alias.consequent.name}' is itself an alias of '{target.consequent.name}': "
            f"aliases cannot chain. Alias '{alias.antecedent.name}' to '{target.consequent.name}' instead.",
            code="tags.alias_chain",
            details={"via": target.consequent.name},
        )
    existing = TagAlias.objects.filter(active_antecedent_id=antecedent).exclude(pk=alias.pk).first()
    if existing is not None:
        raise ConflictError(
            f"'{alias.antecedent.name}' is already an alias of '{existing.consequent.name}'; "
            "retire that first.",
            code="tags.alias_exists",
            details={"alias": existing.pk},
        )
    endpoint = (
        TagImplication.objects.filter(status=RuleStatus.ACTIVE)
        .filter(Q(child_id=antecedent) | Q(parent_id=antecedent))
        .select_related("child", "parent")
        .first()
    )
    if endpoint is not None:
        raise RuleError(
            f"'{alias.antecedent.name}' is part of the implication {endpoint}; "
            "move or retire it before aliasing.",
            code="tags.alias_implication_conflict",
        )


@transaction.atomic
def alias_create(
    *,
    antecedent: str,
    consequent: str,
    actor: Any = None,
    reason: str = "",
    activate: bool = False,
    vocabulary: Vocabulary | None = None,
) -> TagAlias:
    """Propose `antecedent → consequent` (pending), activating it at once when asked by someone
    who may approve rules (anyone else's proposal stays pending)."""
    activate = activate and rules_may_approve(actor)
    vocabulary = vocabulary or vocabulary_default()
    alias = TagAlias(
        vocabulary=vocabulary,
        antecedent=_tag(vocabulary, antecedent),
        consequent=_tag(vocabulary, consequent),
        reason=reason[:500],
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    if alias.antecedent_id == alias.consequent_id:
        raise RuleError("A tag cannot be an alias of itself.")
    alias.save()
    return alias_activate(alias=alias, actor=actor) if activate else alias


@transaction.atomic
def alias_activate(*, alias: TagAlias, actor: Any = None) -> TagAlias:
    """Make an alias active: re-point aliases to its antecedent, rewrite resolutions, flag items."""
    _require_approver(actor)
    alias = TagAlias.objects.select_for_update().select_related("antecedent", "consequent").get(pk=alias.pk)
    if alias.status == RuleStatus.ACTIVE:
        return alias
    _alias_check(alias)
    repointed = list(
        TagAlias.objects.select_for_update().filter(
            status=RuleStatus.ACTIVE, consequent_id=alias.antecedent_id
        )
    )
    for other in repointed:
        other.consequent_id = alias.consequent_id
        other.save(update_fields=["consequent", "updated_at"])
    alias.status = RuleStatus.ACTIVE
    alias.active_antecedent_id = alias.antecedent_id
    alias.approved_by = actor if actor is not None and actor.is_authenticated else None
    alias.save(update_fields=["status", "active_antecedent", "approved_by", "updated_at"])
    tags = [alias.antecedent_id, *(o.antecedent_id for o in repointed)]
    AliasResolution.objects.filter(tag_id__in=tags).delete()
    AliasResolution.objects.bulk_create(
        [AliasResolution(tag_id=t, ideal_tag_id=alias.consequent_id) for t in tags]
    )
    effective_mark_stale_for_tags(tag_ids=tags)
    _log("alias", f"alias {alias.antecedent.name} → {alias.consequent.name}", {"alias": alias.pk}, actor)
    effective_rebuild_start(actor=actor, reason=f"alias {alias.pk}")
    return alias


@transaction.atomic
def alias_retire(*, alias: TagAlias, actor: Any = None, reject: bool = False) -> TagAlias:
    """Retire an active alias (or reject a pending one); its antecedent reads as itself again."""
    _require_approver(actor)
    alias = TagAlias.objects.select_for_update().select_related("antecedent", "consequent").get(pk=alias.pk)
    was_active = alias.status == RuleStatus.ACTIVE
    alias.status = RuleStatus.REJECTED if reject and not was_active else RuleStatus.RETIRED
    alias.active_antecedent = None
    alias.save(update_fields=["status", "active_antecedent", "updated_at"])
    if was_active:
        AliasResolution.objects.filter(tag_id=alias.antecedent_id).delete()
        effective_mark_stale_for_tags(tag_ids=[alias.antecedent_id])
        _log(
            "alias_retire",
            f"retire alias {alias.antecedent.name} → {alias.consequent.name}",
            {"alias": alias.pk},
            actor,
        )
        effective_rebuild_start(actor=actor, reason=f"alias {alias.pk} retired")
    return alias


# --- implications -----------------------------------------------------------------------------


def _active_edges() -> dict[int, set[int]]:
    edges: dict[int, set[int]] = {}
    for child, parent in TagImplication.objects.filter(status=RuleStatus.ACTIVE).values_list(
        "child_id", "parent_id"
    ):
        edges.setdefault(child, set()).add(parent)
    return edges


def _path(edges: dict[int, set[int]], start: int, goal: int) -> list[int] | None:
    """A shortest chain of implications start ⇒ … ⇒ goal, or None."""
    previous: dict[int, int | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            chain = [node]
            while (node := previous[node]) is not None:  # type: ignore[assignment]
                chain.append(node)
            return chain[::-1]
        for nxt in edges.get(node, ()):
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    return None


def _names(ids: list[int]) -> list[str]:
    names = dict(Tag.objects.filter(pk__in=ids).values_list("pk", "name"))
    return [names[i] for i in ids]


def _implication_check(rule: TagImplication) -> None:
    child, parent = rule.child, rule.parent
    if child.pk == parent.pk:
        raise RuleError("A tag cannot imply itself.")
    aliased = AliasResolution.objects.filter(tag_id__in=[child.pk, parent.pk]).select_related(
        "tag", "ideal_tag"
    )
    for row in aliased:
        raise RuleError(
            f"'{row.tag.name}' is an alias of '{row.ideal_tag.name}'; write the implication with "
            f"'{row.ideal_tag.name}'.",
            code="tags.implication_alias_conflict",
        )
    if child.type_id != parent.type_id and not rule.allow_cross_type:
        raise RuleError(
            f"'{child.name}' and '{parent.name}' have different types; allow cross-type implications "
            "explicitly if this is always true (e.g. character ⇒ copyright).",
            code="tags.implication_cross_type",
        )
    edges = _active_edges()
    if (back := _path(edges, parent.pk, child.pk)) is not None:
        # The new rule child ⇒ parent, then the existing chain parent ⇒ … ⇒ child.
        cycle = _names([child.pk, *back])
        raise RuleError(
            f"This would make a cycle: {' ⇒ '.join(cycle)}.",
            code="tags.implication_cycle",
            details={"path": cycle},
        )
    if (redundant := _path(edges, child.pk, parent.pk)) is not None:
        chain = _names(redundant)
        raise RuleError(
            f"Already implied through {' ⇒ '.join(chain)}.",
            code="tags.implication_redundant",
            details={"path": chain},
        )


def closure_rebuild_for(tag_ids: set[int]) -> set[int]:
    """Recompute TagClosure rows of these tags and their descendants; returns the tags touched."""
    edges = _active_edges()
    reverse: dict[int, set[int]] = {}
    for child, parents in edges.items():
        for parent in parents:
            reverse.setdefault(parent, set()).add(child)
    affected = set(tag_ids)
    queue = deque(tag_ids)
    while queue:
        for child in reverse.get(queue.popleft(), ()):
            if child not in affected:
                affected.add(child)
                queue.append(child)
    TagClosure.objects.filter(descendant_id__in=affected).delete()
    rows = []
    for start in affected:
        depth = {start: 0}
        walk = deque([start])
        while walk:
            node = walk.popleft()
            for parent in edges.get(node, ()):
                if parent not in depth:
                    depth[parent] = depth[node] + 1
                    walk.append(parent)
        rows += [
            TagClosure(descendant_id=start, ancestor_id=a, depth=d) for a, d in depth.items() if a != start
        ]
    TagClosure.objects.bulk_create(rows, batch_size=2000)
    return affected


@transaction.atomic
def implication_create(
    *,
    child: str,
    parent: str,
    actor: Any = None,
    reason: str = "",
    activate: bool = False,
    allow_cross_type: bool = False,
    vocabulary: Vocabulary | None = None,
) -> TagImplication:
    """Propose `child ⇒ parent` (pending), activating it at once when asked by someone who may
    approve rules (anyone else's proposal stays pending)."""
    activate = activate and rules_may_approve(actor)
    vocabulary = vocabulary or vocabulary_default()
    rule = TagImplication(
        vocabulary=vocabulary,
        child=_tag(vocabulary, child),
        parent=_tag(vocabulary, parent),
        allow_cross_type=allow_cross_type,
        reason=reason[:500],
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    if rule.child_id == rule.parent_id:
        raise RuleError("A tag cannot imply itself.")
    if TagImplication.objects.filter(child=rule.child, parent=rule.parent).exists():
        raise ConflictError(
            f"The implication {rule.child.name} ⇒ {rule.parent.name} exists already.",
            code="tags.implication_exists",
        )
    rule.save()
    return implication_activate(rule=rule, actor=actor) if activate else rule


@transaction.atomic
def implication_activate(*, rule: TagImplication, actor: Any = None) -> TagImplication:
    """Activate `child ⇒ parent` after the DAG checks; update the closure and flag items."""
    _require_approver(actor)
    rule = TagImplication.objects.select_for_update().select_related("child", "parent").get(pk=rule.pk)
    if rule.status == RuleStatus.ACTIVE:
        return rule
    _implication_check(rule)
    rule.status = RuleStatus.ACTIVE
    rule.approved_by = actor if actor is not None and actor.is_authenticated else None
    rule.save(update_fields=["status", "approved_by", "updated_at"])
    affected = closure_rebuild_for({rule.child_id})
    effective_mark_stale_for_tags(tag_ids=affected | set(_antecedents_of(affected)))
    _log("implication", f"imply {rule.child.name} ⇒ {rule.parent.name}", {"implication": rule.pk}, actor)
    effective_rebuild_start(actor=actor, reason=f"implication {rule.pk}")
    return rule


@transaction.atomic
def implication_retire(*, rule: TagImplication, actor: Any = None, reject: bool = False) -> TagImplication:
    """Retire an active implication (or reject a pending one) and recompute what it implied."""
    _require_approver(actor)
    rule = TagImplication.objects.select_for_update().select_related("child", "parent").get(pk=rule.pk)
    was_active = rule.status == RuleStatus.ACTIVE
    rule.status = RuleStatus.REJECTED if reject and not was_active else RuleStatus.RETIRED
    rule.save(update_fields=["status", "updated_at"])
    if was_active:
        affected = closure_rebuild_for({rule.child_id})
        effective_mark_stale_for_tags(tag_ids=affected | set(_antecedents_of(affected)))
        _log(
            "implication_retire",
            f"retire {rule.child.name} ⇒ {rule.parent.name}",
            {"implication": rule.pk},
            actor,
        )
        effective_rebuild_start(actor=actor, reason=f"implication {rule.pk} retired")
    return rule


def _antecedents_of(tag_ids: set[int]) -> list[int]:
    return list(AliasResolution.objects.filter(ideal_tag_id__in=tag_ids).values_list("tag_id", flat=True))
