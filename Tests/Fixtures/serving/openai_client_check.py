"""Talks to `knowtune api` with the OpenAI Python client, as users' scripts do, and prints one JSON object of what
it saw (the Swift test asserts on it). Usage: openai_client_check.py BASE_URL API_KEY"""
import json
import sys

import openai

base_url, api_key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=120)
seen = {"models": [m.id for m in client.models.list().data]}

messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is the capital of France?"}]
reply = client.chat.completions.create(model="tiny", messages=messages, temperature=0, max_tokens=12)
seen["content"] = reply.choices[0].message.content
seen["finish_reason"] = reply.choices[0].finish_reason
seen["completion_tokens"] = reply.usage.completion_tokens

pieces = []
for chunk in client.chat.completions.create(model="tiny", messages=messages, temperature=0, max_tokens=12, stream=True):
    if chunk.choices and chunk.choices[0].delta.content:
        pieces.append(chunk.choices[0].delta.content)
seen["streamed"] = "".join(pieces)

schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"], "additionalProperties": False}
structured = client.chat.completions.create(
    model="tiny", messages=messages, temperature=0, max_tokens=24,
    response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}})
seen["structured"] = json.loads(structured.choices[0].message.content)

try:
    client.chat.completions.create(model="tiny", messages=messages, response_format={
        "type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "string", "format": "email"}}})
    seen["bad_schema"] = "accepted"
except openai.BadRequestError as error:
    seen["bad_schema"] = error.status_code

try:
    openai.OpenAI(base_url=base_url, api_key="wrong", max_retries=0).models.list()
    seen["wrong_key"] = "accepted"
except openai.AuthenticationError as error:
    seen["wrong_key"] = error.status_code

print(json.dumps(seen, sort_keys=True))
