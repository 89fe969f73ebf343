"""Rebuild `docs/` and `history.jsonl` of the decisions_real set from the source repositories.

    python evalsets/decisions_real/copy_sources.py [--mirrors DIR]

`docs/` gets the files byte for byte. `history.jsonl` gets, oldest first, every non-merge commit of
the source repository that touched a copied file (`git log --follow`, so renames are followed):
its author name, email and date, the copied files it touched, and how many files it touched in the
source's record folder (`bulk`: more than 20, the product's BULK_COMMIT_FILES, i.e. an import or a
reformatting that the product credits to nobody). decisions_eval.py replays it as a git repository
around the copied files, so that `km ingest` sees the authors a real checkout would give.

Each source is read at its pinned commit with `git --git-dir=... show COMMIT:PATH`; DIR holds one git
directory per repository as `owner+name/repo` (a bare clone, or a clone whose `.git` is inside).
Clone them with e.g. `git clone --bare https://github.com/OWNER/NAME DIR/OWNER+NAME/repo`.
The file lists here are the set: `meta.json` repeats them with the counts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# the source's folder of records: a commit's file count for `bulk` is taken under it
RECORD_FOLDERS = {
    "govuk-aws": "docs/architecture", "moj-cloud-platform": "architecture-decision-record",
    "elastisys-compliantkubernetes": "docs/adr", "odh-adr": "architecture-decision-records", "joyent-rfd": "rfd",
}
BULK_COMMIT_FILES = 20

# folder under docs/ -> (repository, commit, licence file, files copied, relative paths kept)
SOURCES: dict[str, tuple[str, str, str, list[str]]] = {
    "govuk-aws": ("alphagov/govuk-aws", "81ee9f6e91fd8692fbf751ecf980c671c13aa3c0", "LICENCE", [
        "docs/architecture/README.md",
        *[f"docs/architecture/decisions/{n}" for n in (
            "0001-record-architecture-decisions.md", "0002-hosting-platforms.md", "0003-aws-networking-outline.md",
            "0004-dns-definitions-for-hosts-and-services.md", "0005-terraform-module-location.md",
            "0006-puppet-architecture.md", "0007-puppet-cert-management.md", "0008-postgres-on-puppetmaster.md",
            "0009-environment-bootstrapping-process.md", "0011-migration-strategy.md",
            "0012-security-groups-in-terraform.md", "0015-dns-infrastructure.md", "0016-internal-dns-zones.md",
            "0018-use-rds-instead-of-provisioned-ec2-databases.md", "0019-centralise-mysql-databases.md",
            "0021-use-acm-for-ssl-purchases-and-terminate-certificates-on-elbs.md",
            "0022-remove-the-elasticsearch-proxy.md", "0023-use-separate-data-repository.md",
            "0025-use-elasticache-for-redis.md", "0026-remove-load-balancer-tier.md",
            "0029-combine-api-redis-into-backend-redis.md", "0030-change-in-architecture-to-asset-master.md",
            "0032-transfer-artefact-binary.md", "0033-ip-ranges.md", "0037-alb-health-checks.md",
            "0038-mongo_replacement_by_documentdb.md", "0039-non-govuk-domain-policy.md")],
    ]),
    "moj-cloud-platform": ("ministryofjustice/cloud-platform", "7f879f3af6cd39f8711ec99ee3b4d2163ff54024", "LICENSE", [
        "architecture-decision-record/README.md",
        *[f"architecture-decision-record/{n}" for n in (
            "000-Record-Architecture-Decisions.md", "001-Use-AWS-hosted-elasticsearch.md", "003-Use-Concourse-CI.md",
            "004-use-kubernetes-for-container-management.md", "006-Use-github-as-user-directory.md",
            "007-Use-ECR-As-Container-Registry.md", "010-live-0-to-live-1-Cluster.md",
            "011-Introduce-Open-Policy-Agent.md", "012-One-cluster-for-dev-staging-prod.md",
            "014-Why-we-build-our-own-kubernetes-cluster.md", "016-Kibana-is-open-to-all-service-teams.md",
            "017-Variable-Naming.md", "018-Dedicated-Ingress-Controllers.md", "019-Shared-Ingress-Controllers.md",
            "020-Environments-and-Pipeline.md", "021-Multi-cluster.md", "022-EKS.md", "023-Logging.md",
            "024-SSO-for-CP-Team-to-access-AWS.md", "026-Managed-Prometheus.md",
            "028-Repo-vulnerability-scanning.md", "033-Manager-cluster.md", "034-EKS-Fargate.md",
            "035-deprecated-tls-versions.md", "036-multi-cluster.md", "037-serverless.md",
            "038-split-components-infrastructure.md", "040-use-github-actions.md",
            "044-naming-container-platform.md", "047-use-karpenter-for-scaling.md")],
    ]),
    "elastisys-compliantkubernetes": (
        "elastisys/compliantkubernetes", "04884fa09daed5027fbabedb288be4c48a12d26b", "LICENSE", [
        "docs/adr/index.md", "docs/adr/template.md",
        *[f"docs/adr/{n}" for n in (
            "0000-use-markdown-architectural-decision-records.md", "0001-use-rook-storage-orchestrator.md",
            "0002-use-kubespray-for-cluster-lifecycle.md", "0003-push-metrics-via-influxdb.md",
            "0005-use-individual-ssh-keys.md", "0008-use-hostnetwork-or-loadbalancer-for-ingress.md",
            "0009-use-cluster-issuers-for-letsencrypt.md", "0010-run-managed-services-in-workload-cluster.md",
            "0011-let-upstream-projects-handle-crds.md", "0012-do-not-persist-dex.md",
            "0013-configure-alerts-in-omt.md", "0015-we-believe-in-community-driven-open-source.md",
            "0016-gid-0-is-okey-but-not-by-default.md", "0017-persist-dex.md", "0019-push-metrics-via-thanos.md",
            "0022-use-dedicated-nodes-for-additional-services.md", "0023-allow-snippets-annotations.md",
            "0025-local-storage.md", "0029-expose-jaeger-ui.md", "0036-run-ingress-nginx-as-daemonset.md",
            "0038-replace-starboard-operator-with-trivy-operator.md", "0040-allow-group-id-0.md",
            "0041-encryption-at-rest.md", "0046-handle-crds.md", "0047-kubernetes-versions.md",
            "0050-use-cluster-isolation.md", "0056-allow-snippets-annotations-after-risk-acceptance.md")],
        ]),
    "odh-adr": ("opendatahub-io/architecture-decision-records", "6325c10cd2130be1adee9e3689f5692b34a596ba", "LICENSE", [
        "README.md",
        *[f"architecture-decision-records/{n}" for n in (
            "README.md", "ODH-ADR-0000-template.md",
            "ODH-ADR-0001-use-architecture-decision-records-for-open-data-hub.md",
            "ODH-ADR-0002-data-science-pipelines-multi-user-approach.md", "ODH-ADR-0003-use-apache-2-0-licence.md",
            "ODH-ADR-0005-github-labels-standards.md", "ODH-ADR-0006-organization-membership-automation.md",
            "ODH-ADR-0007-gitops-repository-openshift-ai-lifecycle.md",
            "automl/ODH-ADR-0001-automl.md", "autorag/ODH-ADR-0001-autorag.md",
            "data-science-pipelines/ODH-ADR-DSP-0001-data-science-pipelines-upgrade-testing-strategy.md",
            "distributed-workloads/ODH-ADR-DW-0001-determine-codeflare-deployment-strategy.md",
            "eval-hub/ODH-ADR-EH-0002-multi-tenancy-and-authz.md",
            "explainability/ODH-ADR-XAI-0001-trustyaiservice-database-configuration.md",
            "mlflow/ODH-ADR-ML-0001-consolidate-ai-asset-registries-on-mlflow.md",
            "model-registry/ODH-ADR-MR-0001-Sign.md",
            "model-serving/ODH-ADR-MS-0001-kserve-private-network-in-cluster.md",
            "model-serving/ODH-ADR-MS-0003-ai-gateway-tenancy.md",
            "operator/ODH-ADR-0004-odh-trusted-ca-configmap.md",
            "operator/ODH-ADR-Operator-0001-distributed-manifests.md",
            "operator/ODH-ADR-Operator-0002-operator-scope.md",
            "operator/ODH-ADR-Operator-0005-configure-resources.md",
            "operator/ODH-ADR-Operator-0007-auth-crd.md",
            "operator/ODH-ADR-Operator-0008-resources-lifecycle.md",
            "operator/ODH-ADR-Operator-0009-connection-api.md",
            "operator/ODH-ADR-Operator-0012-gateway-api-authentication-architecture.md",
            "operator/ODH-ADR-Operator-0014-decouple-cert-manager-installation.md")],
    ]),
    "joyent-rfd": ("joyent/rfd", "b185010168f05de6520b67de137dcec1f88f438f", "LICENSE", [
        "README.md",
        *[f"rfd/{n}/README.md" for n in (
            "0004", "0009", "0012", "0018", "0023", "0025", "0029", "0030", "0045", "0051", "0054", "0063",
            "0072", "0075", "0086", "0093", "0098", "0102", "0108", "0116", "0120", "0131", "0137", "0170",
            "0175")],
        "rfd/0173/README.adoc",
    ]),
}


def git_dir(mirrors: Path, repo: str) -> Path:
    base = mirrors / repo.replace("/", "+") / "repo"
    return base / ".git" if (base / ".git").is_dir() else base


def copy(mirrors: Path, out: Path) -> dict[str, int]:
    counts = {}
    for folder, (repo, commit, licence, files) in SOURCES.items():
        gd = git_dir(mirrors, repo)
        for path in [*files, licence]:
            data = subprocess.run(["git", f"--git-dir={gd}", "show", f"{commit}:{path}"], capture_output=True,
                                  check=True).stdout
            target = out / folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        counts[folder] = len(files) + 1
    return counts


def git(gd: Path, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={gd}", "-c", "core.quotepath=off", *args], capture_output=True,
                          check=True, text=True).stdout


def history(mirrors: Path) -> list[dict]:
    """Every non-merge commit touching a copied record (not the licence), oldest first."""
    commits: dict[tuple[str, str], dict] = {}
    for folder, (repo, commit, _licence, files) in SOURCES.items():
        gd = git_dir(mirrors, repo)
        sizes: dict[str, int] = {}
        for path in files:
            log = git(gd, "log", "--no-merges", "--follow", "--format=%H%x09%aN%x09%aE%x09%aI", commit, "--", path)
            for line in log.splitlines():
                sha, name, email, date = line.split("\t")
                if sha not in sizes:
                    touched = git(gd, "show", "--no-renames", "--name-only", "--format=", sha, "--",
                                  RECORD_FOLDERS[folder])
                    sizes[sha] = len([t for t in touched.splitlines() if t.strip()])
                entry = commits.setdefault((folder, sha), {
                    "folder": folder, "commit": sha, "author": name, "email": email, "date": date,
                    "files_in_source_folder": sizes[sha], "bulk": sizes[sha] > BULK_COMMIT_FILES, "files": []})
                entry["files"].append(f"{folder}/{path}")
    return sorted(commits.values(), key=lambda c: (c["date"], c["folder"], c["commit"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mirrors", type=Path, default=Path("/work/.mirror"))
    parser.add_argument("--out", type=Path, default=HERE / "docs")
    args = parser.parse_args()
    counts = copy(args.mirrors, args.out)
    print(counts, sum(counts.values()), file=sys.stderr)
    if args.out == HERE / "docs":
        with open(HERE / "history.jsonl", "w", encoding="utf-8") as f:
            for c in history(args.mirrors):
                f.write(json.dumps(c, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
