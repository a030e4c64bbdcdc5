"""Reading corpora and writing outputs safely.

Corpora are Parquet, JSONL or CSV files read with polars. :func:`read_corpus`
checks the schema and the texts and raises a one-line
:class:`~synthfilter.errors.SynthfilterError` naming the file, the column and the
rows at fault. Every output is written to a temporary file in the target
folder and renamed into place, so an interrupted run never leaves a
half-written file behind.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import polars as pl

from synthfilter.atomic import atomic_path
from synthfilter.errors import InputError, OutputError, SchemaError, describe_rows

PARQUET_SUFFIXES = (".parquet", ".pq")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
CSV_SUFFIXES = (".csv",)
SUPPORTED_SUFFIXES = PARQUET_SUFFIXES + JSONL_SUFFIXES + CSV_SUFFIXES

#: Longest text accepted by default (characters). Encoders read only the first
#: few hundred tokens; a text far longer than this is almost always a parsing
#: error (a whole file in one cell).
DEFAULT_MAX_TEXT_CHARS = 200_000

ID_COLUMN = "id"


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    raise InputError(
        f"{path}: unsupported file type '{suffix or '(none)'}'; "
        f"use one of {', '.join(SUPPORTED_SUFFIXES)}"
    )


def read_table(path: str | Path) -> pl.DataFrame:
    """Read a Parquet, JSONL or CSV file into a polars DataFrame.

    Parameters
    ----------
    path : str or Path
        The file. Its suffix selects the reader.

    Returns
    -------
    polars.DataFrame

    Raises
    ------
    InputError
        If the file is missing, empty, of an unknown type, not valid UTF-8 or
        otherwise unreadable.
    """
    path = Path(path)
    fmt = _format_of(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; check the path")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty; give a corpus with at least one record")
    try:
        if fmt == "parquet":
            return pl.read_parquet(path)
        if fmt == "jsonl":
            return pl.read_ndjson(path, infer_schema_length=None)
        return pl.read_csv(path, encoding="utf8", infer_schema_length=10_000)
    except (pl.exceptions.PolarsError, OSError, ValueError, UnicodeDecodeError) as exc:
        if fmt == "jsonl":
            problem = _jsonl_problem(path)
            if problem:
                raise InputError(f"{path}: {problem}") from None
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = "is it a valid, UTF-8 encoded " + fmt.upper() + " file?"
        if "utf" in reason.lower():
            hint = "re-encode it as UTF-8 (e.g. iconv -t UTF-8)"
        raise InputError(f"{path}: cannot read as {fmt.upper()} ({reason[:160]}); {hint}") from None


def _jsonl_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                yield number, raw


def _jsonl_problem(path: Path) -> str | None:
    """The first line of a JSONL file that is not UTF-8 or not a JSON object, described for a message."""
    for number, raw in _jsonl_lines(path):
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            return (f"line {number} is not valid UTF-8 (byte {exc.start + 1} of the line); "
                    "re-encode the file as UTF-8 (e.g. iconv -t UTF-8)")
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            return (f"line {number} is not valid JSON ({exc.msg} at character {exc.pos + 1}); "
                    "fix or remove that line")
        if not isinstance(record, dict):
            return f"line {number} is a JSON {type(record).__name__}, not an object; each line must be one record"
    return None


def _check_jsonl_texts(path: Path, column: str, texts: pl.Series) -> None:
    """Refuse JSONL records whose text field is an object or array (polars would read its JSON as text)."""
    looks_json = texts.cast(pl.String).str.strip_chars().str.contains(r"^(\{.*\}|\[.*\])$").fill_null(False)
    if not looks_json.any():
        return
    bad = []
    for row, (_, raw) in enumerate(_jsonl_lines(path)):
        if looks_json[row] and not isinstance(json.loads(raw).get(column), str):
            bad.append(row)
    if bad:
        raise SchemaError(
            f"{path}: field '{column}' is a JSON object or array, not a string, at {describe_rows(bad)} "
            f"(line {bad[0] + 1}); give the text as a string, or name the text field with --text-column"
        )


def content_ids(texts: pl.Series) -> pl.Series:
    """Stable ids from content: SHA-256 prefix of the text, with ``-N`` for repeats.

    Parameters
    ----------
    texts : polars.Series of str

    Returns
    -------
    polars.Series of str
        ``"sha256:<16 hex>"`` for the first occurrence of a text and
        ``"sha256:<16 hex>-<n>"`` for its n-th repeat, so ids are unique and do
        not depend on row order for distinct texts.
    """
    seen: dict[str, int] = {}
    ids = []
    for text in texts.to_list():
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        n = seen.get(digest, 0)
        seen[digest] = n + 1
        ids.append(f"sha256:{digest}" + (f"-{n}" if n else ""))
    return pl.Series(ID_COLUMN, ids, dtype=pl.String)


def document_ids(frame: pl.DataFrame, column: str | None, source: str = "corpus") -> list[str] | None:
    """Each record's document id from ``column``, for a bootstrap that resamples documents.

    Parameters
    ----------
    frame : polars.DataFrame
        The corpus.
    column : str or None
        Column naming each record's document (a URL, a conversation id);
        ``None`` gives ``None`` (records are their own documents).
    source : str, default "corpus"
        Name of the data, for messages.

    Returns
    -------
    list of str or None

    Raises
    ------
    SchemaError
        If the column is missing or has nulls.
    """
    if column is None:
        return None
    if column not in frame.columns:
        raise SchemaError(f"{source}: no group column '{column}' (columns: {', '.join(frame.columns[:12])}); "
                          "name the document column with --group-column, or leave it out")
    values = frame.get_column(column)
    if values.null_count():
        rows = values.is_null().arg_true().to_list()
        raise SchemaError(f"{source}: group column '{column}' is null at {describe_rows(rows)}; "
                          "give every record a document id, or leave --group-column out")
    return values.cast(pl.String).to_list()


def validate_corpus(
    df: pl.DataFrame,
    *,
    source: str,
    text_column: str = "text",
    id_column: str | None = None,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
) -> pl.DataFrame:
    """Check a corpus table and return it with ``id`` and ``text`` columns.

    Parameters
    ----------
    df : polars.DataFrame
        The records.
    source : str
        Where they came from, for messages (a file path or ``"<dataframe>"``).
    text_column : str, default "text"
        Column holding the texts.
    id_column : str, optional
        Column holding record ids. ``None`` takes ``id`` if present, else
        content hashes (:func:`content_ids`).
    max_text_chars : int
        Longest text accepted.

    Returns
    -------
    polars.DataFrame
        ``id`` (str) first, ``text`` (str) second, then the other columns in
        their original order; row order is kept.

    Raises
    ------
    SchemaError
        For a missing or non-text column, null, empty or over-long texts, and
        null or duplicate ids.
    """
    if df.height == 0:
        raise InputError(f"{source}: no records; give a corpus with at least one record")
    if text_column not in df.columns:
        raise SchemaError(
            f"{source}: no column '{text_column}' (columns: {', '.join(df.columns[:12])}); "
            "name the text column with --text-column"
        )
    texts = df.get_column(text_column)
    if texts.dtype not in (pl.String, pl.Categorical, pl.Null):
        raise SchemaError(
            f"{source}: column '{text_column}' holds {texts.dtype}, not text; "
            "name the text column with --text-column"
        )
    texts = texts.cast(pl.String)
    null_rows = texts.is_null().arg_true().to_list()
    if null_rows:
        raise SchemaError(
            f"{source}: column '{text_column}' is null at {describe_rows(null_rows)}; "
            "drop or fill those records first"
        )
    empty_rows = (texts.str.strip_chars().str.len_chars() == 0).arg_true().to_list()
    if empty_rows:
        raise SchemaError(
            f"{source}: column '{text_column}' is empty at {describe_rows(empty_rows)}; "
            "drop those records first"
        )
    long_rows = (texts.str.len_chars() > max_text_chars).arg_true().to_list()
    if long_rows:
        raise SchemaError(
            f"{source}: column '{text_column}' has texts over {max_text_chars:,} characters at "
            f"{describe_rows(long_rows)}; split them, or raise the limit with --max-text-chars"
        )

    if id_column is None and ID_COLUMN in df.columns and text_column != ID_COLUMN:
        id_column = ID_COLUMN
    if id_column is None:
        ids = content_ids(texts)
    else:
        if id_column not in df.columns:
            raise SchemaError(
                f"{source}: no id column '{id_column}' (columns: {', '.join(df.columns[:12])}); "
                "name it with --id-column, or leave it out to use content hashes"
            )
        ids = df.get_column(id_column).cast(pl.String)
        null_ids = ids.is_null().arg_true().to_list()
        if null_ids:
            raise SchemaError(
                f"{source}: id column '{id_column}' is null at {describe_rows(null_ids)}; "
                "fill the ids, or leave out --id-column to use content hashes"
            )
        dup_ids = ids.is_duplicated().arg_true().to_list()
        if dup_ids:
            raise SchemaError(
                f"{source}: id column '{id_column}' repeats ids at {describe_rows(dup_ids)}; "
                "make ids unique, or leave out --id-column to use content hashes"
            )
    others = [c for c in df.columns if c not in {text_column, id_column, ID_COLUMN, "text"}]
    return pl.concat(
        [pl.DataFrame({ID_COLUMN: ids.alias(ID_COLUMN), "text": texts.alias("text")}), df.select(others)],
        how="horizontal",
    )


def read_corpus(
    path: str | Path,
    *,
    text_column: str = "text",
    id_column: str | None = None,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
) -> pl.DataFrame:
    """Read and validate a corpus file; see :func:`read_table` and :func:`validate_corpus`."""
    df = read_table(path)
    if _format_of(Path(path)) == "jsonl" and text_column in df.columns and df.get_column(text_column).dtype == pl.String:
        _check_jsonl_texts(Path(path), text_column, df.get_column(text_column))
    return validate_corpus(
        df, source=str(path), text_column=text_column, id_column=id_column, max_text_chars=max_text_chars
    )


def check_output_path(output: str | Path, inputs: Sequence[str | Path] = ()) -> Path:
    """Refuse an output that would overwrite an input or cannot be written.

    Raises
    ------
    OutputError
        If ``output`` is one of ``inputs``, is a directory, or its folder does
        not exist or is not writable.
    """
    output = Path(output)
    resolved = output.resolve()
    for item in inputs:
        if Path(item).resolve() == resolved:
            raise OutputError(f"{output}: refusing to overwrite an input file; choose another path with -o")
    if output.is_dir():
        raise OutputError(f"{output}: is a directory; give a file path with -o")
    folder = resolved.parent
    if not folder.is_dir():
        raise OutputError(f"{output}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK):
        raise OutputError(f"{output}: folder {folder} is not writable; choose another path with -o")
    return output


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write text (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def atomic_write_parquet(df: pl.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame as Parquet atomically, with deterministic bytes.

    The file carries no timestamps; the same frame gives the same bytes.
    """
    with atomic_path(path) as tmp:
        df.write_parquet(tmp, compression="zstd", statistics=False)
    return Path(path)


def _kind_of(data: object) -> str | None:
    """Which supported in-memory table type ``data`` is, by its module (no import of optional libraries)."""
    if isinstance(data, pl.DataFrame):
        return "polars"
    module = type(data).__module__.split(".")[0]
    name = type(data).__name__
    if module == "pandas" and name == "DataFrame":
        return "pandas"
    if module == "pyarrow" and name == "Table":
        return "pyarrow"
    if module == "datasets" and name == "Dataset":
        return "datasets"
    return None


def is_table(data: object) -> bool:
    """Whether ``data`` is one table :func:`as_frame` takes (not a list of them, not a list of texts)."""
    return _kind_of(data) is not None


def as_frame(data: object, text_column: str = "text") -> pl.DataFrame:
    """Records from where a user's data is, as a polars DataFrame.

    Parameters
    ----------
    data : polars.DataFrame, pandas.DataFrame, pyarrow.Table, datasets.Dataset or sequence of str
        The records. A Hugging Face ``datasets.Dataset`` is converted through
        its Arrow table (the ``datasets`` package is optional and never
        imported here). A sequence of strings becomes one text column.
    text_column : str, default "text"
        Name of the text column made from a sequence of strings.

    Returns
    -------
    polars.DataFrame
        The same records and columns, in order (not yet validated: see
        :func:`validate_corpus`).

    Raises
    ------
    ConfigError
        For any other type, or a sequence that holds something else than
        strings.
    """
    from synthfilter.errors import ConfigError

    kind = _kind_of(data)
    if kind == "polars":
        return data
    if kind == "pandas":
        return pl.from_pandas(data)
    if kind == "pyarrow":
        return pl.from_arrow(data)
    if kind == "datasets":
        return pl.from_arrow(data.data.table)
    if isinstance(data, (str, bytes)) or not isinstance(data, Sequence):
        raise ConfigError(
            f"cannot read records from a {type(data).__name__}; give a pyarrow Table, a datasets.Dataset, "
            "a polars or pandas DataFrame or a list of strings"
        )
    items = list(data)
    bad = [i for i, item in enumerate(items) if not isinstance(item, str)]
    if bad:
        raise ConfigError(f"a list of records must hold strings; {describe_rows(bad)} hold(s) "
                          f"{type(items[bad[0]]).__name__}")
    return pl.DataFrame({text_column: pl.Series(items, dtype=pl.String)})


def like_input(frame: pl.DataFrame, data: object) -> object:
    """``frame`` as the type ``data`` came in: pandas, pyarrow and datasets inputs get their own type back.

    Polars frames and lists of strings give a polars DataFrame.

    Parameters
    ----------
    frame : polars.DataFrame
        A result table.
    data : object
        What the user passed in.

    Returns
    -------
    polars.DataFrame, pandas.DataFrame, pyarrow.Table or datasets.Dataset
    """
    kind = _kind_of(data)
    if kind == "pandas":
        return frame.to_pandas()
    if kind == "pyarrow":
        return frame.to_arrow()
    if kind == "datasets":
        return type(data)(frame.to_arrow())
    return frame
