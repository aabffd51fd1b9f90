# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

"""Filters of the access role: RBAC matrix validation, per-host plans, drift.

The matrix (access_roles, access_people) lives in inventory. These pure functions turn it
into what one host should have (access_host_plan) and compare it with what hosts really
have (access_drift, used by access_review.yml). Only the controller runs them, so they live
here rather than in module_utils. Every error names the field it is about, as
``access_people[2].keys[0]``, so that a bad matrix is refused before any host changes.
The docs live beside this file as <filter_name>.yml.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
import struct

from ansible.errors import AnsibleFilterError

NAME_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
ROLE_FIELDS = {"description", "groups", "sudo", "hosts"}
PERSON_FIELDS = {"name", "full_name", "roles", "keys", "expires", "state"}
PERSON_STATES = ("active", "inactive")
# Accounts with a UID in this range are people (Debian's adduser.conf FIRST_UID/LAST_UID).
HUMAN_UIDS = range(1000, 60000)


def _fail(field, message):
    raise AnsibleFilterError(f"{field}: {message}")


def _as_list(value, field, element_check=None):
    if value is None:
        return []
    if not isinstance(value, list):
        _fail(field, f"must be a list, got {type(value).__name__}")
    if element_check:
        for index, element in enumerate(value):
            element_check(element, f"{field}[{index}]")
    return list(value)


def _check_name(value, field):
    if not isinstance(value, str) or not NAME_RE.match(value):
        _fail(field, f"'{value}' is not a valid unix name (lower case letters, digits, _ and -, at most 32)")


def _check_string(value, field):
    if not isinstance(value, str) or not value.strip():
        _fail(field, "must be a non-empty string")


def _parse_date(value, field):
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        _fail(field, f"'{value}' is not a date (YYYY-MM-DD)")
    return None  # unreachable: _fail raises


def _today(today):
    return _parse_date(today, "today") if today else dt.datetime.now(dt.UTC).date()


# Length-prefixed fields in the key data: the type, then the key material.
KEY_FIELDS = {"ssh-ed25519": 2, "ssh-rsa": 3, "ecdsa-sha2-nistp256": 3, "ecdsa-sha2-nistp384": 3,
              "ecdsa-sha2-nistp521": 3, "sk-ssh-ed25519@openssh.com": 3, "sk-ecdsa-sha2-nistp256@openssh.com": 4}


def _wire_fields(blob):
    """SSH wire format: uint32 length + bytes, repeated to the exact end, else ValueError."""
    fields, offset = [], 0
    while offset < len(blob):
        (length,) = struct.unpack(">I", blob[offset : offset + 4])
        if length == 0 or offset + 4 + length > len(blob):
            raise ValueError("truncated field")
        fields.append(blob[offset + 4 : offset + 4 + length])
        offset += 4 + length
    return fields


def _key_blob(line, field):
    """An authorized_keys line (optionally with options before the type) -> (type, blob, comment)."""
    if not isinstance(line, str) or not line.strip():
        _fail(field, "must be an OpenSSH public key line ('ssh-ed25519 AAAA... comment')")
    tokens = line.strip().split()
    start = next((i for i, token in enumerate(tokens) if token in KEY_TYPES), None)
    if start is None or start + 1 >= len(tokens):
        _fail(field, f"not an OpenSSH public key: the key type must be one of {', '.join(KEY_TYPES)}")
    key_type, data = tokens[start], tokens[start + 1]
    try:
        blob = base64.b64decode(data, validate=True)
        fields = _wire_fields(blob)
        embedded = fields[0].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError, ValueError, IndexError):
        _fail(field, "not an OpenSSH public key: the key data is not valid base64 key material (cut short?)")
    if embedded != key_type:
        _fail(field, f"not an OpenSSH public key: the data is a '{embedded}' key labelled '{key_type}'")
    if len(fields) < KEY_FIELDS.get(key_type, 2):
        _fail(field, "not an OpenSSH public key: the key data is incomplete (cut short?)")
    return key_type, blob, " ".join(tokens[start + 2 :])


def ssh_key_fingerprint(line, field="key"):
    """An OpenSSH public key line -> 'SHA256:...' exactly as `ssh-keygen -l` prints it."""
    _key_type, blob, _comment = _key_blob(line, field)
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
    return f"SHA256:{digest}"


def _validate_roles(roles, admin_role):
    if not isinstance(roles, dict) or not roles:
        _fail("access_roles", "must be a non-empty mapping of role name to its definition")
    normalized = {}
    for role_name, role in roles.items():
        field = f"access_roles.{role_name}"
        _check_name(role_name, field)
        if not isinstance(role, dict):
            _fail(field, "must be a mapping with groups, sudo and hosts")
        unknown = sorted(set(role) - ROLE_FIELDS)
        if unknown:
            _fail(f"{field}.{unknown[0]}", f"unknown field (known: {', '.join(sorted(ROLE_FIELDS))})")
        hosts = _as_list(role.get("hosts", ["all"]), f"{field}.hosts", _check_string)
        if not hosts:
            _fail(f"{field}.hosts", "must name at least one inventory group (or all)")
        normalized[role_name] = {
            "description": str(role.get("description", "")),
            "groups": _as_list(role.get("groups", []), f"{field}.groups", _check_name),
            "sudo": _as_list(role.get("sudo", []), f"{field}.sudo", _check_string),
            "hosts": hosts,
        }
    if admin_role not in normalized:
        _fail("access_roles", f"the role '{admin_role}' (access_admin_role) is not defined")
    if "all" not in normalized[admin_role]["hosts"]:
        _fail(f"access_roles.{admin_role}.hosts", "the admin role must reach all hosts")
    return normalized


def _is_active(person, today):
    return person["state"] == "active" and (person["expires"] is None or person["expires"] >= today)


def access_validate(people, roles, admin_role="admin", today=None):
    """Check the whole matrix; return the people normalized (dates as YYYY-MM-DD, active flag).

    Refuses: unknown fields, unknown roles, malformed keys, duplicate names or keys, bad
    dates, and a matrix in which no active person holds the admin role.
    """
    today = _today(today)
    known_roles = _validate_roles(roles, admin_role)
    people = _as_list(people, "access_people")
    seen, seen_keys, normalized = {}, {}, []
    for index, person in enumerate(people):
        field = f"access_people[{index}]"
        if not isinstance(person, dict):
            _fail(field, "must be a mapping with at least name and roles")
        unknown = sorted(set(person) - PERSON_FIELDS)
        if unknown:
            _fail(f"{field}.{unknown[0]}", f"unknown field (known: {', '.join(sorted(PERSON_FIELDS))})")
        name = person.get("name")
        _check_name(name, f"{field}.name")
        if name in seen:
            _fail(f"{field}.name", f"'{name}' is listed twice (also access_people[{seen[name]}])")
        seen[name] = index
        state = person.get("state", "active")
        if state not in PERSON_STATES:
            _fail(f"{field}.state", f"'{state}' is not one of {', '.join(PERSON_STATES)}")
        person_roles = _as_list(person.get("roles"), f"{field}.roles")
        if state == "active" and not person_roles:
            _fail(f"{field}.roles", "an active person needs at least one role")
        for role_index, role in enumerate(person_roles):
            if role not in known_roles:
                _fail(f"{field}.roles[{role_index}]",
                      f"unknown role '{role}' (known: {', '.join(sorted(known_roles))})")
        keys = _as_list(person.get("keys"), f"{field}.keys")
        fingerprints = []
        for key_index, key in enumerate(keys):
            key_field = f"{field}.keys[{key_index}]"
            fingerprint = ssh_key_fingerprint(key, key_field)
            if fingerprint in seen_keys:
                _fail(key_field, f"the same key is already given to {seen_keys[fingerprint]}")
            seen_keys[fingerprint] = name
            fingerprints.append(fingerprint)
        expires = _parse_date(person.get("expires"), f"{field}.expires")
        entry = {
            "name": name,
            "full_name": str(person.get("full_name") or name),
            "roles": person_roles,
            "keys": [key.strip() for key in keys],
            "fingerprints": fingerprints,
            "expires": expires,
            "state": state,
        }
        entry["active"] = _is_active(entry, today)
        entry["expired"] = state == "active" and not entry["active"]
        normalized.append(entry)
    if not any(admin_role in p["roles"] and p["active"] for p in normalized):
        _fail("access_people", f"no active, unexpired person holds the role '{admin_role}': "
                               "refusing a matrix that would leave no admin")
    for entry in normalized:
        entry["expires"] = entry["expires"].isoformat() if entry["expires"] else None
    return normalized


# Account expiry of a deactivated account: 1970-01-02 (day 1; shadow(5) gives day 0 two meanings).
LOCKED_EPOCH = 86400


def _epoch(iso_date):
    """Expiry for the user module: the end of the given day in UTC, or -1 for none."""
    if not iso_date:
        return -1
    day = dt.date.fromisoformat(iso_date) + dt.timedelta(days=1)
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp())


def _reaches(role, host_groups):
    return "all" in role["hosts"] or bool(set(role["hosts"]) & set(host_groups))


def access_host_plan(people, roles, host_groups, existing_accounts=(), ssh_group="", admin_role="admin",
                     today=None, group_members=None, known_accounts=()):
    """What one host should have: [{name, full_name, state: present|locked, groups, keys, expires}].

    A person is present where one of their roles reaches the host (role hosts name inventory
    groups, or all) while they are active and unexpired; otherwise their account, if the host
    has one, is locked (deactivated). People who never had an account here are left out.

    With ``existing_accounts`` as getent's passwd database ({name: [password, uid, gid, gecos,
    ...]}) and ``group_members`` as its group database ({group: [password, gid, "a,b"]}), a
    person's account (a UID in HUMAN_UIDS) that is in a role's group or the SSH group but that
    the matrix does not list, nor ``known_accounts``, is locked too, marked ``unlisted``: taking
    someone out of the matrix takes their access away.
    """
    validated = access_validate(people, roles, admin_role=admin_role, today=today)
    known_roles = _validate_roles(roles, admin_role)
    host_groups = list(host_groups or [])
    existing = set(existing_accounts or [])
    plan = []
    for person in validated:
        reaching = [r for r in person["roles"] if _reaches(known_roles[r], host_groups)]
        if person["active"] and reaching:
            groups = sorted({g for r in reaching for g in known_roles[r]["groups"]} | ({ssh_group} - {""}))
            plan.append({"name": person["name"], "full_name": person["full_name"], "state": "present",
                         "groups": groups, "keys": person["keys"], "expires": person["expires"],
                         "expires_epoch": _epoch(person["expires"])})
        elif person["name"] in existing:
            plan.append({"name": person["name"], "full_name": person["full_name"], "state": "locked",
                         "groups": [], "keys": [], "expires": person["expires"], "expires_epoch": LOCKED_EPOCH})
    listed = {person["name"] for person in validated} | set(known_accounts or [])
    managed = {g for role in known_roles.values() for g in role["groups"]} | ({ssh_group} - {""})
    for name, groups in sorted(_unlisted_members(existing_accounts, group_members, managed, listed).items()):
        plan.append({"name": name, "full_name": _gecos(existing_accounts, name), "state": "locked", "groups": [],
                     "keys": [], "expires": "", "expires_epoch": LOCKED_EPOCH, "unlisted": True,
                     "held_groups": groups})
    return plan


def _gecos(accounts, name):
    """The full name in getent passwd's [password, uid, gid, gecos, home, shell]."""
    fields = accounts.get(name) or []
    return str(fields[3]).split(",")[0] if len(fields) > 3 else ""


def _unlisted_members(accounts, group_members, managed, listed):
    """{account: [managed groups it is in]} for people's accounts (HUMAN_UIDS) outside ``listed``."""
    if not isinstance(accounts, dict) or not isinstance(group_members, dict):
        return {}
    found = {}
    for group in sorted(managed):
        fields = group_members.get(group)
        if not fields or len(fields) < 3:
            continue
        members = {m for m in str(fields[2] or "").split(",") if m}
        members |= {name for name, entry in accounts.items()
                    if len(entry) > 2 and str(entry[2]) == str(fields[1])}
        for name in members - set(listed):
            entry = accounts.get(name)
            try:
                uid = int(entry[1])
            except (TypeError, ValueError, IndexError):
                continue
            if uid in HUMAN_UIDS:
                found.setdefault(name, []).append(group)
    return found


def access_sudo_rules(roles, admin_role="admin"):
    """Roles -> [{role, group, commands}] for the sudoers file: each role's sudo rights go to
    its first unix group, so a person's rights follow their role through group membership."""
    known_roles = _validate_roles(roles, admin_role)
    rules = []
    for name in sorted(known_roles):
        role = known_roles[name]
        if role["sudo"]:
            if not role["groups"]:
                _fail(f"access_roles.{name}.groups", "a role with sudo rights needs a group to grant them to")
            rules.append({"role": name, "group": role["groups"][0], "commands": role["sudo"]})
    return rules


def access_parse_sudoers(files):
    """{path: text} of /etc/sudoers and /etc/sudoers.d/* -> [{file, subject, rule}] (users and %groups)."""
    if not isinstance(files, dict):
        raise AnsibleFilterError("access_parse_sudoers: expects a mapping of path to file text")
    rules = []
    for path in sorted(files):
        text = files[path] or ""
        for raw in str(text).replace("\\\n", " ").splitlines():
            line = raw.strip()
            if not line or line.startswith(("#", "Defaults", "@include", "@includedir")):
                continue
            if re.match(r"^(User|Runas|Host|Cmnd)_Alias\b", line):
                continue
            subject, _, rest = line.partition(" ")
            if "=" in rest:
                rules.append({"file": path, "subject": subject, "rule": " ".join(rest.split())})
    return rules


def _parse_authorized_keys(text):
    fingerprints = []
    for line in str(text or "").splitlines():
        if line.strip() and not line.strip().startswith("#"):
            try:
                fingerprints.append(ssh_key_fingerprint(line))
            except AnsibleFilterError:
                fingerprints.append("unparseable:" + hashlib.sha256(line.encode()).hexdigest()[:16])
    return fingerprints


def access_host_state(getent_passwd, getent_group, getent_shadow, authorized_keys, sudoers, lastlog="", today=None):
    """Raw facts gathered on a host -> {accounts: {name: {...}}, sudo: [...]} for access_drift.

    getent_*: the getent module's facts (name -> fields); authorized_keys: {path: file text}
    (each file is matched to the account whose home holds it in .ssh/);
    sudoers: {path: text}; lastlog: the output of `lastlog`. An account counts as locked when
    it has expired or has no login shell; a '!' password alone is how every key-only account
    looks, so it is not a lock.
    """
    today_days = (_today(today) - dt.date(1970, 1, 1)).days
    try:
        keys_by_home = {str(path).rsplit("/.ssh/", 1)[0]: text for path, text in (authorized_keys or {}).items()}
        members = {}
        for group, fields in (getent_group or {}).items():
            for user in filter(None, str(fields[2] or "").split(",")):
                members.setdefault(user, []).append(group)
        last = {}
        for line in str(lastlog or "").splitlines()[1:]:
            parts = line.split(None, 1)
            if parts:
                last[parts[0]] = "never" if "Never logged in" in line else " ".join(line.split()[1:])
        accounts = {}
        for name, fields in (getent_passwd or {}).items():
            uid = int(fields[1])
            if uid not in HUMAN_UIDS:
                continue
            shadow = (getent_shadow or {}).get(name) or ["", "", "", "", "", "", "", ""]
            expire = str(shadow[6]) if len(shadow) > 6 else ""
            accounts[name] = {
                "uid": uid,
                "shell": fields[5],
                "locked": (expire.isdigit() and int(expire) <= today_days)
                or fields[5].endswith(("/nologin", "/false")),
                "groups": sorted(members.get(name, [])),
                "fingerprints": _parse_authorized_keys(keys_by_home.get(fields[4].rstrip("/"), "")),
                "last_login": last.get(name, "unknown"),
            }
        return {"accounts": accounts, "sudo": access_parse_sudoers(sudoers or {})}
    except (IndexError, TypeError, ValueError, AttributeError) as exc:
        raise AnsibleFilterError(f"access_host_state: unexpected host data: {exc}") from exc


def access_drift(hosts, people, roles, known_accounts=(), ssh_group="", admin_role="admin", today=None):
    """Compare hosts' real state with the matrix -> sorted findings [{host, kind, account, detail}].

    hosts: {host: {"groups": [inventory groups], "state": access_host_state(...)}}. Kinds:
    unknown_account, unknown_key, excess_rights, inactive_still_active, missing_account.
    """
    validated = access_validate(people, roles, admin_role=admin_role, today=today)
    by_name = {p["name"]: p for p in validated}
    known = set(known_accounts or [])
    findings = []

    def add(host, kind, account, detail):
        findings.append({"host": host, "kind": kind, "account": account, "detail": detail})

    if not isinstance(hosts, dict):
        raise AnsibleFilterError("access_drift: hosts must be a mapping of host name to its state")
    for host in sorted(hosts):
        host_groups = hosts[host].get("groups", [])
        state = hosts[host].get("state") or {}
        accounts = state.get("accounts", {})
        plan = {e["name"]: e for e in access_host_plan(people, roles, host_groups, accounts, ssh_group,
                                                       admin_role, today)}
        for name in sorted(accounts):
            account = accounts[name]
            if name in known:
                continue
            person = by_name.get(name)
            if person is None:
                add(host, "unknown_account", name, f"uid {account['uid']} is not in the access matrix "
                    f"(groups: {', '.join(account['groups']) or 'none'}; last login: {account['last_login']})")
                continue
            wanted = plan.get(name)
            if wanted is None or wanted["state"] == "locked":
                if not account["locked"] or account["fingerprints"]:
                    why = ("inactive" if person["state"] == "inactive" else
                           "expired on " + str(person["expires"]) if person["expired"] else
                           "no role of theirs reaches this host")
                    add(host, "inactive_still_active", name,
                        f"{why}, but the account is {'unlocked' if not account['locked'] else 'locked'} "
                        f"with {len(account['fingerprints'])} key(s)")
                continue
            extra_keys = sorted(set(account["fingerprints"]) - set(person["fingerprints"]))
            for fingerprint in extra_keys:
                add(host, "unknown_key", name, f"key {fingerprint} is not in the matrix")
            extra_groups = sorted(set(account["groups"]) - set(wanted["groups"]))
            if extra_groups:
                add(host, "excess_rights", name, f"member of {', '.join(extra_groups)}, which "
                    f"role(s) {', '.join(person['roles'])} do not grant")
        for rule in state.get("sudo", []):
            subject = rule["subject"]
            if not subject.startswith("%") and subject in by_name:
                add(host, "excess_rights", subject, f"personal sudo rule in {rule['file']}: {rule['rule']}")
        for name, wanted in sorted(plan.items()):
            if wanted["state"] == "present" and name not in accounts:
                add(host, "missing_account", name, "the matrix grants access here but the host has no account")
    return sorted(findings, key=lambda f: (f["kind"], f["host"], f["account"], f["detail"]))


def _guard(function):
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except AnsibleFilterError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise AnsibleFilterError(f"{function.__name__}: {exc}") from exc

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


class FilterModule:
    def filters(self):
        return {
            function.__name__: _guard(function)
            for function in (access_validate, access_host_plan, access_sudo_rules, access_host_state,
                             access_drift, access_parse_sudoers, ssh_key_fingerprint)
        }
