// Drives the official Ollama JavaScript client through the otel-llm proxy.
// Usage: node client.mjs '{"host": "http://127.0.0.1:PORT", "steps": [{"op": "chat", "stream": true, "headers": {...}}]}'
// Prints one JSON array: per step the text (or embedding size), the number of parts
// received, or the error status and message.
import { Ollama } from 'ollama'

const { host, steps } = JSON.parse(process.argv[2])
const messages = [{ role: 'user', content: 'Why is the sky blue?' }]
const results = []

for (const step of steps) {
  const client = new Ollama({ host, headers: step.headers || {} })
  const model = step.model || (step.op === 'embed' ? 'all-minilm' : 'llama3.2')
  try {
    if (step.op === 'chat' || step.op === 'generate') {
      const request = step.op === 'chat'
        ? { model, messages, stream: step.stream }
        : { model, prompt: 'Why is the sky blue?', stream: step.stream }
      const call = step.op === 'chat' ? client.chat(request) : client.generate(request)
      if (step.stream) {
        let text = ''
        let parts = 0
        for await (const part of await call) {
          text += step.op === 'chat' ? part.message.content : part.response
          parts += 1
        }
        results.push({ text, parts })
      } else {
        const response = await call
        results.push({ text: step.op === 'chat' ? response.message.content : response.response, parts: 1 })
      }
    } else if (step.op === 'embed') {
      const response = await client.embed({ model, input: 'Why is the sky blue?' })
      results.push({ dims: response.embeddings[0].length, parts: 1 })
    } else {
      throw new Error(`unknown op ${step.op}`)
    }
  } catch (error) {
    results.push({ error: error.error ?? error.message, status: error.status_code ?? null })
  }
}
console.log(JSON.stringify(results))
