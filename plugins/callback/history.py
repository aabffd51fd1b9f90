# Copyright (c) ERP operations team
# Apache License 2.0 (see galaxy.yml)

from __future__ import annotations

DOCUMENTATION = r"""
name: history
type: notification
short_description: Records every playbook run with ARA Records Ansible (ara_default), unless turned off
version_added: 1.0.0
description:
  - ARA's own callback C(ara_default) under a stable name, with what this repository adds around it.
    Enabled in the repository's ansible.cfg as C(erp.ops.history), so it is found through the
    collection path whatever Python version ARA is installed for, and under ansible-runner (erpctl),
    which replaces C(ANSIBLE_CALLBACK_PLUGINS).
  - O(record) turns recording off (C(ERP_RECORD_HISTORY=0)); without ARA installed, or when ARA cannot
    start, the run goes on unrecorded with one warning instead of failing.
  - O(base_dir) is where the offline client keeps its settings and sqlite database (C(ARA_BASE_DIR));
    O(labels) are added to O(default_labels) (erpctl labels the runs it starts this way).
  - Files passed as C(-e @file) hold extra variables too, so while C(extra_vars) is in
    O(ignored_arguments) their content is not recorded either.
  - Every other option is ARA's own, with ARA's names, environment variables and C([ara]) keys
    (docs/history.md). C(api_client=http) with O(api_server) sends the records to a shared ARA server.
requirements:
  - ara (the offline client, the default, needs ara[server])
author:
  - ERP operations team (!UNKNOWN)
options:
  record:
    description: Record runs at all. C(ERP_RECORD_HISTORY=0) runs without recording anything.
    type: bool
    default: true
    env:
      - name: ERP_RECORD_HISTORY
    ini:
      - section: ara
        key: record
  base_dir:
    description:
      - ARA's data directory for the offline client (settings.yaml and ansible.sqlite). A relative
        path in ansible.cfg is resolved from the directory of that ansible.cfg.
      - Unset, ARA's own default (~/.ara/server).
    type: path
    env:
      - name: ARA_BASE_DIR
    ini:
      - section: ara
        key: base_dir
  labels:
    description: Labels added to O(default_labels) for this run (a comma-separated list in the environment).
    type: list
    elements: str
    default: []
    env:
      - name: ERP_HISTORY_LABELS
  # From here on ARA 1.8.0's own options of ara_default, verbatim:
  # tests/unit/plugins/callback/test_history.py compares them with the installed ARA.
  api_client:
    description: The client to use for communicating with the API
    default: offline
    env:
      - name: ARA_API_CLIENT
    ini:
      - section: ara
        key: api_client
    choices: ['offline', 'http']
  api_server:
    description: When using the HTTP client, the base URL to the ARA API server
    default: http://127.0.0.1:8000
    env:
      - name: ARA_API_SERVER
    ini:
      - section: ara
        key: api_server
  api_username:
    description: If authentication is required, the username to authenticate with
    default: null
    env:
      - name: ARA_API_USERNAME
    ini:
      - section: ara
        key: api_username
  api_password:
    description: If authentication is required, the password to authenticate with
    default: null
    env:
      - name: ARA_API_PASSWORD
    ini:
      - section: ara
        key: api_password
  api_cert:
    description: If a client certificate is required, the path to the certificate to use.
    default: null
    env:
      - name: ARA_API_CERT
    ini:
      - section: ara
        key: api_cert
  api_key:
    description: If a client certificate is required, the path to the private key to use.
    default: null
    env:
      - name: ARA_API_KEY
    ini:
      - section: ara
        key: api_key
  api_ca:
    description: The path to a CA bundle.
    default: null
    env:
      - name: ARA_API_CA
    ini:
      - section: ara
        key: api_ca
  api_insecure:
    description: Can be enabled to ignore SSL certification of the API server
    type: bool
    default: false
    env:
      - name: ARA_API_INSECURE
    ini:
      - section: ara
        key: api_insecure
  api_timeout:
    description: Timeout, in seconds, before giving up on HTTP requests
    type: integer
    default: 30
    env:
      - name: ARA_API_TIMEOUT
    ini:
      - section: ara
        key: api_timeout
  argument_labels:
    description: |
        A list of CLI arguments that, if set, will be automatically applied to playbooks as labels.
        Note that CLI arguments are not always named the same as how they are represented by Ansible.
        For example, --limit is "subset", --user is "remote_user" but --check is "check".
    type: list
    default:
      - remote_user
      - check
      - tags
      - skip_tags
      - subset
    env:
      - name: ARA_ARGUMENT_LABELS
    ini:
      - section: ara
        key: argument_labels
  callback_threads:
    description:
      - The number of threads to use in API client thread pools (maximum 4)
      - When set to 0, no threading will be used (default) which is appropriate for usage with sqlite
      - Using threads is recommended when the server is using MySQL or PostgreSQL
    type: integer
    default: 0
    env:
      - name: ARA_CALLBACK_THREADS
    ini:
      - section: ara
        key: callback_threads
  default_labels:
    description: A list of default labels that will be applied to playbooks
    type: list
    default: []
    env:
      - name: ARA_DEFAULT_LABELS
    ini:
      - section: ara
        key: default_labels
  ignored_facts:
    description:
      - List of host facts that will not be saved by ARA
      - Every fact can be ignored by specifying 'all'
    type: list
    default: ["ansible_env"]
    env:
      - name: ARA_IGNORED_FACTS
    ini:
      - section: ara
        key: ignored_facts
  ignored_arguments:
    description: List of Ansible arguments that will not be saved by ARA
    type: list
    default: ["extra_vars"]
    env:
      - name: ARA_IGNORED_ARGUMENTS
    ini:
      - section: ara
        key: ignored_arguments
  ignored_files:
    description:
      - List of file path patterns that will not be saved by ARA
      - Entries are matched as substrings by default
      - Values prefixed with 'regex:' are treated as Python regular expressions and matched with re.search
      - Note that the default pattern ('.ansible/tmp') gets dynamically set to the value of ANSIBLE_LOCAL_TEMP
      - The configuration for ANSIBLE_LOCAL_TEMP is typically ~/.ansible/tmp unless it is changed.
    type: list
    default: [".ansible/tmp"]
    env:
      - name: ARA_IGNORED_FILES
    ini:
      - section: ara
        key: ignored_files
  localhost_as_hostname:
    description:
        - Associates results to the hostname (or fqdn) instead of localhost when the inventory name is localhost
        - Defaults to false for backwards compatibility, set to true to enable
        - This can be useful when targeting localhost, using ansible-pull or ansible-playbook -i 'localhost,'
        - This helps differentiating results between hosts, otherwise everything would be recorded under localhost.
    type: boolean
    default: false
    env:
      - name: ARA_LOCALHOST_AS_HOSTNAME
    ini:
      - section: ara
        key: localhost_as_hostname
  localhost_as_hostname_format:
    description:
      - The format to use when recording the hostname for localhost
      - This is used when recording the controller hostname or when ARA_LOCALHOST_TO_HOSTNAME is true
      - There are different formats to choose from based on the full (or short) configured hostname and fqdn
      - Defaults to 'fqdn' (i.e, server.example.org) but can be set to 'fqdn_short' (server)
      - Other options include 'hostname' and 'hostname_short' which may be suitable depending on server configuration
    default: fqdn
    env:
      - name: ARA_LOCALHOST_AS_HOSTNAME_FORMAT
    ini:
      - section: ara
        key: localhost_as_hostname_format
    choices: ['fqdn', 'fqdn_short', 'hostname', 'hostname_short']
  record_controller:
    description:
      - Whether ara should record the controller hostname on which the playbook ran
      - Defaults to true but may be optionally set to false for privacy or other use cases
    type: boolean
    default: true
    env:
      - name: ARA_RECORD_CONTROLLER
    ini:
      - section: ara
        key: record_controller
  record_controller_name:
    description:
      - The name to use when recording the controller hostname.
      - Defaults to the system hostname.
    type: string
    env:
      - name: ARA_RECORD_CONTROLLER_NAME
    ini:
      - section: ara
        key: record_controller_name
  record_user:
    description:
      - Whether ara should record the user that ran a playbook
      - Defaults to true but may be optionally set to false for privacy or other use cases
    type: boolean
    default: true
    env:
      - name: ARA_RECORD_USER
    ini:
      - section: ara
        key: record_user
  record_user_name:
    description:
      - The name to use when recording the user that ran a playbook.
      - Defaults to the OS user which ran the playbook.
    type: string
    env:
      - name: ARA_RECORD_USER_NAME
    ini:
      - section: ara
        key: record_user_name
  record_task_content:
    description:
      - Whether ara should record the content of a task
      - Defaults to true, set to false for privacy or other use cases
    type: boolean
    default: true
    env:
      - name: ARA_RECORD_TASK_CONTENT
    ini:
      - section: ara
        key: record_task_content
"""

# Imports after the documentation, as ansible-test's sanity checks want for plugins
# (import-before-documentation), hence E402 on the imports.
import contextlib  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402

from ansible import context  # noqa: E402
from ansible.plugins.callback import CallbackBase  # noqa: E402
from ansible.utils.display import Display  # noqa: E402

display = Display()

try:
    from ara.plugins.callback.ara_default import CallbackModule as _AraCallback
except ImportError as exc:
    _AraCallback = None
    _ARA_MISSING = str(exc)


def extra_vars_files(extra_vars, basedir: str) -> list[str]:
    """The files named by ``-e @file`` arguments, absolute and with links resolved, since the
    loader may cache a file under either name."""
    paths = []
    for value in extra_vars or ():
        if isinstance(value, str) and value.startswith("@") and len(value) > 1:
            path = os.path.join(basedir, os.path.expanduser(value[1:]))
            for name in (os.path.abspath(path), os.path.realpath(path)):
                if name not in paths:
                    paths.append(name)
    return paths


class CallbackModule(_AraCallback or CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "erp.ops.history"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        self._deferred_signals = []
        super().__init__()

    def set_handler(self, sig):
        # ARA's __init__ installs SIGINT/SIGTERM handlers that mark the run "expired" through its
        # API client. Installed only once recording has started: a recorder turned off or unable
        # to start has no client, and its handler would turn Ctrl-C into a traceback.
        self._deferred_signals.append(sig)

    def set_options(self, task_keys=None, var_options=None, direct=None):
        CallbackBase.set_options(self, task_keys=task_keys, var_options=var_options, direct=direct)
        if not self.get_option("record"):
            self.disabled = True
            return
        if _AraCallback is None:
            display.warning(f"erp.ops.history: ARA is not installed ({_ARA_MISSING}), this run is not recorded "
                            "(make setup installs it; ERP_RECORD_HISTORY=0 turns recording off)")
            self.disabled = True
            return
        base_dir = self.get_option("base_dir")
        if base_dir:
            # ARA's server settings read it from the environment when the offline client starts.
            os.environ["ARA_BASE_DIR"] = base_dir
        # The offline client migrates its database on every start and Django reports that on
        # stdout, four lines ahead of every play: kept out of the run's output.
        chatter = io.StringIO()
        try:
            with contextlib.redirect_stdout(chatter):
                super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        except Exception as exc:  # recording is a record of the run, never a reason to stop it
            said = " ".join(chatter.getvalue().split())[-300:]
            display.warning(f"erp.ops.history: ARA could not start ({type(exc).__name__}: {exc}), "
                            f"this run is not recorded{': ' + said if said else ''}")
            self.disabled = True
            return
        self.default_labels = [*self.default_labels, *self.get_option("labels")]
        if "extra_vars" in self.ignored_arguments:
            self.ignored_files = [*self.ignored_files, *extra_vars_files(context.CLIARGS.get("extra_vars"),
                                                                         os.getcwd())]
            self._compile_ignored_file_patterns()
        for sig in self._deferred_signals:
            _AraCallback.set_handler(self, sig)

    def v2_playbook_on_start(self, playbook):
        # Every later record refers to the run's record: without it (a shared server that does
        # not answer) each callback would only fail again, one warning per task.
        try:
            return super().v2_playbook_on_start(playbook)
        except Exception as exc:
            display.warning(f"erp.ops.history: ARA could not record the run ({type(exc).__name__}: {exc}), "
                            "this run is not recorded")
            self.disabled = True
            return None
