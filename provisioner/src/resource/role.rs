//! An IAM role with das-setup's inline permissions policy. Two instances: the processor's
//! (assumed by Lambda) and the delivery stream's (assumed by Firehose).

use std::collections::BTreeMap;
use std::fmt;

use aws_sdk_iam::operation::create_role::CreateRoleError;
use aws_sdk_iam::operation::delete_role::DeleteRoleError;
use aws_sdk_iam::operation::delete_role_policy::DeleteRolePolicyError;
use aws_sdk_iam::operation::detach_role_policy::DetachRolePolicyError;
use aws_sdk_iam::operation::get_role::GetRoleError;
use aws_sdk_iam::operation::get_role_policy::GetRolePolicyError;
use aws_sdk_iam::operation::list_attached_role_policies::ListAttachedRolePoliciesError;
use aws_sdk_iam::operation::list_role_policies::ListRolePoliciesError;
use serde_json::Value;

use super::{
    Change, Check, Ctx, Effect, Level, Planned, Res, Resource, Verdict, invalid, missing_tags,
};
use crate::aws::{AwsError, Clients, Named as _, policy_document};
use crate::desired::Desired;
use crate::session::kind_word;

#[derive(Debug, Clone, PartialEq)]
pub struct RoleState {
    pub arn: String,
    pub trust: Option<Value>,
    pub policy: Option<Value>,
    pub tags: BTreeMap<String, String>,
}

/// Which role, and what it should hold.
#[derive(Debug, Clone, Copy)]
pub struct RoleSpec<'a> {
    pub resource: Resource,
    pub name: &'a str,
    pub trust: &'a Value,
    pub policy: &'a Value,
    purpose: &'static str,
}

impl<'a> RoleSpec<'a> {
    pub fn processor(d: &'a Desired) -> Self {
        Self {
            resource: Resource::ProcessorRole,
            name: &d.names.processor_role,
            trust: &d.documents.processor_trust,
            policy: &d.documents.processor_policy,
            purpose: "the das-setup processor Lambda",
        }
    }

    pub fn firehose(d: &'a Desired) -> Self {
        Self {
            resource: Resource::FirehoseRole,
            name: &d.names.firehose_role,
            trust: &d.documents.firehose_trust,
            policy: &d.documents.firehose_policy,
            purpose: "the das-setup delivery stream",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RoleChange {
    Create,
    Trust,
    Policy,
    Tags,
}

impl fmt::Display for RoleChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RoleChange::Create => "create role",
            RoleChange::Trust => "trust policy",
            RoleChange::Policy => "permissions policy",
            RoleChange::Tags => "tags",
        })
    }
}

impl Change for RoleChange {
    fn effect(self) -> Effect {
        match self {
            RoleChange::Create => Effect::Create,
            RoleChange::Trust | RoleChange::Policy | RoleChange::Tags => Effect::Update,
        }
    }
}

pub async fn observe(
    clients: &Clients,
    name: &str,
    policy_name: &str,
) -> Result<Option<RoleState>, AwsError> {
    let what = format!("role {name}");
    let Some(out) = clients
        .iam
        .get_role()
        .role_name(name)
        .send()
        .await
        .or_absent("iam:GetRole", &what, |e| {
            matches!(e, GetRoleError::NoSuchEntityException(_))
        })?
    else {
        return Ok(None);
    };
    let Some(role) = out.role else {
        return Err(AwsError::invalid(
            "iam:GetRole",
            what,
            "the answer has no Role".into(),
        ));
    };
    let policy = clients
        .iam
        .get_role_policy()
        .role_name(name)
        .policy_name(policy_name)
        .send()
        .await
        .or_absent("iam:GetRolePolicy", &what, |e| {
            matches!(e, GetRolePolicyError::NoSuchEntityException(_))
        })?
        .and_then(|p| policy_document(&p.policy_document));
    Ok(Some(RoleState {
        arn: role.arn,
        trust: role
            .assume_role_policy_document
            .as_deref()
            .and_then(policy_document),
        policy,
        tags: role
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect(),
    }))
}

pub fn compare(
    spec: RoleSpec<'_>,
    state: Option<&RoleState>,
    tags: &BTreeMap<String, String>,
) -> Planned<RoleChange> {
    let changes = match state {
        None => vec![RoleChange::Create, RoleChange::Policy],
        Some(r) => {
            let mut changes = vec![];
            if r.trust.as_ref() != Some(spec.trust) {
                changes.push(RoleChange::Trust);
            }
            if r.policy.as_ref() != Some(spec.policy) {
                changes.push(RoleChange::Policy);
            }
            if missing_tags(tags, &r.tags) {
                changes.push(RoleChange::Tags);
            }
            changes
        }
    };
    Planned::new(spec.name, changes)
}

pub async fn apply(
    ctx: &Ctx<'_>,
    d: &Desired,
    spec: RoleSpec<'_>,
    plan: &Planned<RoleChange>,
) -> Res {
    if plan.changes.is_empty() {
        return Ok(());
    }
    let name = spec.name;
    let what = format!("role {name}");
    let step = ctx.progress.begin(format!("configuring {what}"), false);
    let iam = &ctx.clients.iam;
    let mut tags = Vec::new();
    for (k, v) in &d.tags {
        tags.push(
            aws_sdk_iam::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| invalid("iam:TagRole", name, e))?,
        );
    }
    let update_trust = || async {
        ctx.mutate("iam:UpdateAssumeRolePolicy", name)?;
        iam.update_assume_role_policy()
            .role_name(name)
            .policy_document(spec.trust.to_string())
            .send()
            .await
            .named("iam:UpdateAssumeRolePolicy", &what)?;
        Ok::<_, super::ApplyError>(())
    };
    for change in &plan.changes {
        match change {
            RoleChange::Create => {
                ctx.mutate("iam:CreateRole", name)?;
                let created = iam
                    .create_role()
                    .role_name(name)
                    .description(format!(
                        "Used by {} of {} {}",
                        spec.purpose,
                        kind_word(d.database.kind),
                        d.database.id
                    ))
                    .assume_role_policy_document(spec.trust.to_string())
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await;
                let existed = created
                    .as_ref()
                    .err()
                    .and_then(|e| e.as_service_error())
                    .is_some_and(|e| matches!(e, CreateRoleError::EntityAlreadyExistsException(_)));
                if existed {
                    // An interrupted run created it: make sure it is what we want.
                    update_trust().await?;
                } else {
                    created.named("iam:CreateRole", &what)?;
                }
            }
            RoleChange::Trust => update_trust().await?,
            RoleChange::Policy => {
                ctx.mutate("iam:PutRolePolicy", name)?;
                iam.put_role_policy()
                    .role_name(name)
                    .policy_name(&d.names.role_policy)
                    .policy_document(spec.policy.to_string())
                    .send()
                    .await
                    .named("iam:PutRolePolicy", &what)?;
            }
            RoleChange::Tags => {
                ctx.mutate("iam:TagRole", name)?;
                iam.tag_role()
                    .role_name(name)
                    .set_tags(Some(tags.clone()))
                    .send()
                    .await
                    .named("iam:TagRole", &what)?;
            }
        }
    }
    step.done(&format!("{what}: {}", plan.descriptions().join(", ")));
    Ok(())
}

pub fn verdict(state: Option<&RoleState>) -> Verdict {
    state.map_or(Verdict::Absent, |r| Verdict::by_tags(&r.tags))
}

/// Inline and attached policies first (IAM refuses to delete a role that has any), then the
/// role; "not found" at any step counts as done.
pub async fn delete(clients: &Clients, name: &str) -> Result<(), AwsError> {
    let iam = &clients.iam;
    let what = format!("role {name}");
    let Some(inline) = iam
        .list_role_policies()
        .role_name(name)
        .send()
        .await
        .or_absent("iam:ListRolePolicies", &what, |e| {
            matches!(e, ListRolePoliciesError::NoSuchEntityException(_))
        })?
    else {
        return Ok(());
    };
    for policy in inline.policy_names() {
        iam.delete_role_policy()
            .role_name(name)
            .policy_name(policy)
            .send()
            .await
            .or_absent("iam:DeleteRolePolicy", &what, |e| {
                matches!(e, DeleteRolePolicyError::NoSuchEntityException(_))
            })?;
    }
    let attached = iam
        .list_attached_role_policies()
        .role_name(name)
        .send()
        .await
        .or_absent("iam:ListAttachedRolePolicies", &what, |e| {
            matches!(e, ListAttachedRolePoliciesError::NoSuchEntityException(_))
        })?;
    for policy in attached.as_ref().map_or(&[][..], |a| a.attached_policies()) {
        if let Some(arn) = policy.policy_arn() {
            iam.detach_role_policy()
                .role_name(name)
                .policy_arn(arn)
                .send()
                .await
                .or_absent("iam:DetachRolePolicy", &what, |e| {
                    matches!(e, DetachRolePolicyError::NoSuchEntityException(_))
                })?;
        }
    }
    iam.delete_role()
        .role_name(name)
        .send()
        .await
        .or_absent("iam:DeleteRole", &what, |e| {
            matches!(e, DeleteRoleError::NoSuchEntityException(_))
        })?;
    Ok(())
}

/// `status`: the role exists with das-setup's policies (`want`: what `up` would set, when the
/// key is known).
pub fn check(resource: Resource, role: Option<&RoleState>, want: Option<RoleSpec<'_>>) -> Check {
    let Some(role) = role else {
        return Check::of(resource, Level::Fail, "does not exist");
    };
    let role_name = role.arn.rsplit('/').next().unwrap_or(&role.arn).to_owned();
    if role.policy.is_none() {
        return Check::of(
            resource,
            Level::Fail,
            format!("{role_name}: its permissions policy is missing"),
        );
    }
    let mut differs = Vec::new();
    if want.is_some_and(|w| role.trust.as_ref() != Some(w.trust)) {
        differs.push("trust policy");
    }
    if want.is_some_and(|w| role.policy.as_ref() != Some(w.policy)) {
        differs.push("permissions policy");
    }
    if differs.is_empty() {
        Check::of(resource, Level::Ok, role_name)
    } else {
        Check::of(
            resource,
            Level::Warn,
            format!(
                "{role_name}: {} differs from what up sets",
                differs.join(" and ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::testing::{Answer, FakeAws};

    #[tokio::test]
    async fn a_missing_role_is_none_from_the_modelled_error() {
        let fake = FakeAws::new(|c| match c.operation.as_str() {
            "GetRole" => {
                Answer::error_query(404, "NoSuchEntity", "The role with name r cannot be found.")
            }
            _ => Answer::unexpected(),
        });
        let role = observe(&fake.clients(), "r", "p").await;
        assert!(matches!(role, Ok(None)), "{role:?}");
        assert_eq!(fake.operations(), ["GetRole"]);
    }

    #[tokio::test]
    async fn delete_removes_policies_first_and_counts_missing_as_done() {
        let fake = FakeAws::new(|c| match c.operation.as_str() {
            "ListRolePolicies" => Answer::xml(
                200,
                "<ListRolePoliciesResponse><ListRolePoliciesResult><PolicyNames><member>p</member></PolicyNames><IsTruncated>false</IsTruncated></ListRolePoliciesResult></ListRolePoliciesResponse>",
            ),
            "DeleteRolePolicy" => Answer::xml(200, "<DeleteRolePolicyResponse/>"),
            "ListAttachedRolePolicies" => Answer::xml(
                200,
                "<ListAttachedRolePoliciesResponse><ListAttachedRolePoliciesResult><AttachedPolicies><member><PolicyArn>arn:aws:iam::aws:policy/X</PolicyArn><PolicyName>X</PolicyName></member></AttachedPolicies><IsTruncated>false</IsTruncated></ListAttachedRolePoliciesResult></ListAttachedRolePoliciesResponse>",
            ),
            "DetachRolePolicy" => Answer::error_query(404, "NoSuchEntity", "gone meanwhile"),
            "DeleteRole" => Answer::xml(200, "<DeleteRoleResponse/>"),
            _ => Answer::unexpected(),
        });
        let result = delete(&fake.clients(), "r").await;
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(
            fake.operations(),
            [
                "ListRolePolicies",
                "DeleteRolePolicy",
                "ListAttachedRolePolicies",
                "DetachRolePolicy",
                "DeleteRole"
            ]
        );
    }

    #[tokio::test]
    async fn nothing_is_sent_when_the_role_is_as_wanted() {
        let d = crate::desired::tests::desired_started();
        let spec = RoleSpec::processor(&d);
        let state = RoleState {
            arn: "arn:aws:iam::111122223333:role/r".into(),
            trust: Some(spec.trust.clone()),
            policy: Some(spec.policy.clone()),
            tags: d.tags.clone(),
        };
        let plan = compare(spec, Some(&state), &d.tags);
        assert!(plan.changes.is_empty(), "{plan:?}");
        let fake = FakeAws::silent();
        let clients = fake.clients();
        let progress = crate::progress::Progress::new(true);
        assert!(
            apply(&Ctx::new(&clients, &progress), &d, spec, &plan)
                .await
                .is_ok()
        );
        assert!(fake.calls().is_empty());
        // A changed trust policy is one call.
        let mut drifted = state.clone();
        drifted.trust = Some(serde_json::json!({}));
        let plan = compare(spec, Some(&drifted), &d.tags);
        assert_eq!(plan.changes, [RoleChange::Trust]);
        let fake = FakeAws::new(|_| Answer::xml(200, "<UpdateAssumeRolePolicyResponse/>"));
        let clients = fake.clients();
        let ctx = Ctx::new(&clients, &progress);
        assert!(apply(&ctx, &d, spec, &plan).await.is_ok());
        assert_eq!(fake.operations(), ["UpdateAssumeRolePolicy"]);
        assert_eq!(ctx.mutations(), 1);
    }
}
