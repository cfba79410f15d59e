// `npm run hosts -- up 3 | down [--name N] | down --all | list`: test hosts for humans,
// kept alive between commands through <dir>/state.json.
import {existsSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {BASE_DIR, createFleet, destroyFleet, listFleets, loadFleet} from './fleet.js'

const USAGE = `usage:
  npm run hosts -- up N [--name NAME]   create N SSH test hosts (default name: dev)
  npm run hosts -- down [--name NAME]   tear a fleet down
  npm run hosts -- down --all           tear down every fleet under ${BASE_DIR}
  npm run hosts -- list                 show fleets and their hosts`

// Separate from the parsing so errors surface as one line plus the usage text.
async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv
  const nameAt = rest.indexOf('--name')
  const name = nameAt >= 0 ? rest[nameAt + 1] : 'dev'
  if (nameAt >= 0 && !name) throw new Error('--name needs a value')

  if (command === 'up') {
    const n = Number(rest.find((a, i) => /^\d+$/.test(a) && rest[i - 1] !== '--name') ?? 'x')
    if (!Number.isInteger(n) || n < 1) throw new Error('up needs a host count, e.g. `up 3`')
    const started = Date.now()
    const fleet = await createFleet(n, {name})
    console.log(fleet.inventoryPath)
    console.log(`# fleet ${fleet.name}: ${n} hosts in ${((Date.now() - started) / 1000).toFixed(1)} s, controller ${fleet.controllerIp}`)
    for (const h of fleet.hosts) console.log(`${h.name}\t${h.ip}\tnetns ${h.netns}\thome ${h.home}`)
    const first = fleet.hosts[0]
    console.log(`# ssh -i ${fleet.keyPath} -o UserKnownHostsFile=${fleet.knownHostsPath} root@${first.ip}`)
    console.log(`# nsenter -t $(cat ${fleet.dir}/${first.name}/sshd.pid) -n -m -u sh    (a root shell "on" ${first.name})`)
  } else if (command === 'down') {
    const names = rest.includes('--all') ? listFleets() : [name]
    if (!rest.includes('--all') && !existsSync(join(BASE_DIR, name))) throw new Error(`no fleet named ${name}`)
    for (const n of names) {
      await destroyFleet(n)
      console.log(`destroyed ${n}`)
    }
  } else if (command === 'list') {
    const names = listFleets()
    if (names.length === 0) console.log('no fleets')
    for (const n of names) {
      if (!existsSync(join(BASE_DIR, n, 'state.json'))) {
        console.log(`${n}\t(incomplete: no state.json; \`down --name ${n}\` cleans it up)`)
        continue
      }
      const fleet = await loadFleet(n)
      console.log(`${fleet.name}\tcontroller ${fleet.controllerIp}\t${fleet.inventoryPath}`)
      for (const h of fleet.hosts) {
        const pidFile = join(fleet.dir, h.name, 'sshd.pid')
        const pid = existsSync(pidFile) ? readFileSync(pidFile, 'utf8').trim() : '-'
        console.log(`  ${h.name}\t${h.ip}\tnetns ${h.netns}\tsshd ${pid && existsSync(`/proc/${pid}/ns`) ? 'up' : 'down'}`)
      }
    }
  } else {
    console.log(USAGE)
    if (command && command !== 'help' && command !== '--help') process.exitCode = 5
  }
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(`hosts: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
})
