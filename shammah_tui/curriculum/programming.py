"""programming: short fixed answers to common Python, git and shell questions."""

from __future__ import annotations

import re

from shammah_tui.curriculum.base import QuestionKind, TemplatedFamily, loose, slug

#: (tool, task as asked) → fixed short answer.
IDIOMS: dict[tuple[str, str], str] = {
    ("python", "reverse a list"): "Use my_list[::-1] or my_list.reverse().",
    ("python", "sort a list"): "Use sorted(my_list) for a new list, or my_list.sort() in place.",
    ("python", "get the length of a list"): "Use len(my_list).",
    ("python", "read a file"): "Use: with open(path) as f: text = f.read()",
    ("python", "write text to a file"): "Open it in write mode: with open(path, \"w\") as f: f.write(text)",
    ("python", "remove duplicates from a list"):
        "Use list(dict.fromkeys(my_list)) to keep the order, or set(my_list).",
    ("python", "merge two dictionaries"): "Use a | b (Python 3.9+) or {**a, **b}.",
    ("python", "check if a key is in a dictionary"): "Use key in my_dict.",
    ("python", "convert a string to an integer"): "Use int(text).",
    ("python", "split a string on commas"): "Use text.split(\",\").",
    ("python", "join a list of strings"): "Use \", \".join(items).",
    ("python", "get today's date"): "Use datetime.date.today() from the datetime module.",
    ("python", "loop over a list with indexes"): "Use for i, item in enumerate(items):",
    ("python", "copy a list"): "Use my_list.copy() or my_list[:].",
    ("python", "check the type of a variable"): "Use type(x), or isinstance(x, SomeType) to test it.",
    ("python", "install a package"): "Run pip install package-name.",
    ("python", "create a virtual environment"): "Run python -m venv .venv.",
    ("python", "parse json"): "Use json.loads(text) from the json module.",
    ("python", "get the last element of a list"): "Use my_list[-1].",
    ("python", "strip whitespace from a string"): "Use text.strip().",
    ("python", "lowercase a string"): "Use text.lower().",
    ("python", "format a float with two decimals"): "Use f\"{x:.2f}\".",
    ("git", "undo the last commit"): "Run git reset --soft HEAD~1 (the changes stay staged).",
    ("git", "create a new branch"): "Run git switch -c branch-name (or git checkout -b branch-name).",
    ("git", "switch branches"): "Run git switch branch-name.",
    ("git", "see the commit history"): "Run git log (git log --oneline for a short view).",
    ("git", "discard changes to a file"): "Run git restore path/to/file.",
    ("git", "stage all changes"): "Run git add -A.",
    ("git", "amend the last commit"): "Run git commit --amend.",
    ("git", "see what changed"): "Run git diff (git diff --staged for staged changes).",
    ("git", "delete a local branch"): "Run git branch -d branch-name.",
    ("git", "stash my changes"): "Run git stash, then git stash pop to bring them back.",
    ("git", "clone a repository"): "Run git clone URL.",
    ("git", "show the current branch"): "Run git branch --show-current.",
    ("shell", "list all files"): "Run ls -la.",
    ("shell", "find files by name"): "Run find . -name \"pattern\".",
    ("shell", "search for text in files"): "Run grep -r \"text\" .",
    ("shell", "count the lines in a file"): "Run wc -l file.",
    ("shell", "check disk usage"): "Run df -h for disks, du -sh DIR for a folder.",
    ("shell", "make a script executable"): "Run chmod +x script.sh.",
    ("shell", "print the working directory"): "Run pwd.",
    ("shell", "create nested directories"): "Run mkdir -p path/to/dir.",
    ("shell", "delete a directory"): "Run rm -r DIR (it cannot be undone).",
    ("shell", "see running processes"): "Run ps aux (or top for a live view).",
    ("shell", "set an environment variable"): "Run export NAME=value.",
    ("shell", "follow the end of a log file"): "Run tail -f file.log.",
}
#: How each tool is named in generated questions.
TOOL_NAMES = {"python": "Python", "git": "git", "shell": "bash"}
_TOOL_ALIASES = {
    "python": "python", "python3": "python", "py": "python", "git": "git",
    "bash": "shell", "shell": "shell", "the shell": "shell", "terminal": "shell",
    "the terminal": "shell", "zsh": "shell", "linux": "shell", "the command line": "shell",
    "command line": "shell", "sh": "shell",
}
_IDIOM_LOOKUP = {(tool, loose(task)): (tool, task) for tool, task in IDIOMS}


def _resolve_idiom(slots: dict[str, str]) -> tuple[str, str] | None:
    tool = _TOOL_ALIASES.get(slots["tool"])
    found = _IDIOM_LOOKUP.get((tool, slots["task"])) if tool else None
    if found is None:
        return None
    return f"{tool}:{slug(found[1])}", IDIOMS[found]


def programming_family() -> TemplatedFamily:
    tools = "|".join(re.escape(a) for a in sorted(_TOOL_ALIASES, key=len, reverse=True))
    return TemplatedFamily("programming", [QuestionKind(
        "idiom", (
            "How do I {task} in {tool}?", "In {tool}, how do you {task}?",
            "What's the {tool} way to {task}?", "{tool}: how to {task}?",
            "How can I {task} using {tool}?"),
        {"task": "[a-z0-9][a-z0-9 ]{0,80}?", "tool": f"(?:{tools})"},
        lambda: [{"task": task, "tool": TOOL_NAMES[tool]} for tool, task in IDIOMS],
        _resolve_idiom)])
