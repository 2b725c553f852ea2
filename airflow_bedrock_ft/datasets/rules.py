"""Every rule id a dataset report can contain, with what it checks.

The ids are stable: tools may match on them. ``(w)`` marks rules reported as warnings;
``file.extension`` is an error for ``s3://`` objects and a warning for local files.
"""

from __future__ import annotations

RULES: dict[str, str] = {
    # reading and parsing
    "empty_file": "A file is 0 bytes, or holds nothing after decompression.",
    "json": "A line is not valid JSON (including a record cut short, and a BOM after line 1).",
    "utf8": "A line is not valid UTF-8.",
    "blank_line": "A line is empty or whitespace only; every line must hold one JSON object.",
    "bom": "(w) The file starts with a UTF-8 byte order mark; accepted.",
    "record.type": "A line holds JSON that is not an object (an array, string, number...).",
    "line.too_long": "A line exceeds the reader's line limit (8 MiB): no record is that large.",
    "file.not_found": "A path or S3 location does not exist or holds no file.",
    "file.read": "A file could not be opened or read to the end (truncated gzip, dangling symlink, "
                 "no permission, not a regular file).",
    "file.extension": "The file name does not end in .jsonl.",
    "file.skipped": "(w) A file under a folder or prefix that Bedrock does not read (not .jsonl).",
    "file.gzip": "(w) The file is gzip-compressed; Bedrock reads training data uncompressed.",
    "no_files": "No training data was given.",
    "hyperparameter": "(w) A hyperparameter that sets a limit (batchSize, epochCount...) is not an integer.",
    # record shape
    "format.wrong": "A record is in another format than the model's (Converse for a prompt/completion one).",
    "format.mixed": "A file mixes records of different formats.",
    "field.required": "A required field is missing.",
    "field.type": "A field has the wrong JSON type.",
    "unknown_field": "A field the format does not define ((w) for fine-tuning, error for distillation).",
    "empty_text": "A text field, message or content list has no text.",
    "schema_version": "schemaVersion is not 'bedrock-conversation-2024' (Llama, distillation).",
    "system.count": "Too many (or, for distillation, zero) system blocks.",
    "system.block": "A system block is not an object with a string 'text'.",
    # conversation
    "messages.count": "Too few or too many messages (2+ for fine-tuning, 1-2 for single-turn distillation).",
    "messages.role": "A role other than user/assistant (system/user/assistant for RFT), or misplaced system.",
    "messages.first_role": "The first message is not from the user.",
    "messages.last_role": "The last message is not the assistant's (the user's for RFT prompts).",
    "messages.alternation": "Two consecutive messages have the same role.",
    "messages.no_user": "An RFT record has no user message.",
    "content.empty": "A message's content list is empty.",
    "content.block": "A content block is not an object with exactly one of text, image or video.",
    "content.count": "A distillation prompt message does not have exactly one text block.",
    "reserved_string": "Text holds a string the model reserves (Nova 'User:', '[EOS]'; Claude '\\nHuman:').",
    # media
    "media.not_supported": "An image or video for a model (or customization type) that takes text only.",
    "media.format": "An image/video format the model does not accept.",
    "media.source": "A media source that is not an s3Location (e.g. inline bytes).",
    "media.uri": "A media location that is not a valid s3:// object URI, or a bad bucketOwner.",
    "media.bucket": "Media outside the dataset's bucket.",
    "media.assistant": "An assistant message contains an image or video.",
    "media.count": "Too many images or videos in one record.",
    "media.mixed": "Images and videos in the same dataset.",
    "media.missing": "A media object does not exist (only with check_media).",
    "media.size": "A media object is larger than the model accepts (only with check_media).",
    "caption.length": "An image caption is shorter or longer than the model allows.",
    # other formats
    "invocation_log.multi_turn": "An invocation log with more than one user message (distillation).",
    "invocation_log.multimodal": "An invocation log whose user content is not a single text block.",
    "rft.reference_answer": "(w) An RFT record without reference_answer.",
    # limits
    "tokens.input": "Estimated input tokens of a record exceed the model's input limit.",
    "tokens.output": "Estimated output tokens of a record exceed the model's output limit.",
    "tokens.max": "Estimated input + output tokens of a record exceed the limit (Titan's: per batchSize).",
    "record_count.min": "Fewer records than the model needs (training or validation split).",
    "record_count.max": "More records than the model accepts in the training or validation split.",
    "record_count.total": "Training plus validation records exceed the model's total.",
    "file_size.max": "The training or validation data (decompressed) is larger than the model accepts; "
                     "reading stops just past the limit, or past the largest size its record and "
                     "token limits allow when it documents none.",
    "validation.not_allowed": "A validation set for a model that takes none (image models).",
}
