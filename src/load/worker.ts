import {parentPort, workerData} from 'node:worker_threads'
import {errorKind, threadResult, type ThreadJob, type ThreadMessage} from './run.js'
import {Writer} from './writer.js'

// One worker thread of `baremetal load --workers N`: its share of the clients, on connections
// of its own; connects, waits for the start, posts tallies while writing and its keys at the end.

const job = workerData as ThreadJob
const port = parentPort!
const post = (m: ThreadMessage) => port.postMessage(m)
const w = new Writer({seeds: job.seeds, password: job.password, clients: job.clients, pipeline: job.pipeline, sets: job.sets, dataSize: job.dataSize, routes: job.routes}, errorKind)

async function main(): Promise<void> {
  try {
    await w.connect()
  } catch (error) {
    post({type: 'failed', message: error instanceof Error ? error.message : String(error)})
    await w.close()
    port.close()
    return
  }
  const started = new Promise<void>((resolve) => {
    port.on('message', (m: {type: string}) => {
      if (m.type === 'start') resolve()
      else if (m.type === 'stop') w.stop()
    })
  })
  post({type: 'ready'})
  await started
  const timer = job.progress ? setInterval(() => post({type: 'progress', sent: w.tally.sent, acked: w.tally.acked, failed: w.tally.failed, hist: w.tally.hist.state()}), 250) : undefined
  await w.run({durationMs: job.durationMs, requests: job.requests})
  if (timer) clearInterval(timer)
  post({type: 'done', result: threadResult(w)})
  await w.close()
  port.close()
}

void main()
