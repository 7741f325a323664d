/**
 * deploy/k8s checked against the code, without a cluster: the manifests are
 * parsed as YAML and every figure that also lives in the code (ports,
 * variables, the config file) is compared with the services' own
 * declarations, so a service's new required variable or a moved default fails
 * here rather than in a crash-looping pod.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import type { Env, EnvVar } from '@switchyard/runtime';
import { loadConfig as breakerConfig } from '@switchyard/breaker';
import { loadConfig as budgetConfig } from '@switchyard/budget';
import { loadConfig as cacheConfig } from '@switchyard/cache';
import { loadConfig as jobsConfig } from '@switchyard/jobs';
import { loadConfig as limiterConfig } from '@switchyard/limiter';
import { loadConfig as routerConfig } from '@switchyard/router';
import { serviceEnvSpecs } from '../../scripts/env-table';

const ROOT = resolve(__dirname, '../..');
const K8S = join(ROOT, 'deploy/k8s');

/** What start-up does with the environment: each service's own loadConfig. */
const loaders: Record<string, (env: Env) => unknown> = {
  router: routerConfig,
  limiter: limiterConfig,
  breaker: breakerConfig,
  budget: budgetConfig,
  cache: cacheConfig,
  jobs: jobsConfig,
};
/** The services the router calls, by the variable that addresses them. */
const PEERS: Record<string, string> = { LIMITER_ADDR: 'limiter', BREAKER_ADDR: 'breaker', BUDGET_ADDR: 'budget', CACHE_ADDR: 'cache' };

interface EnvEntry {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean }; fieldRef?: { fieldPath: string } };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  env?: EnvEntry[];
  ports?: { name: string; containerPort: number }[];
  readinessProbe?: { grpc?: { port: number } };
  livenessProbe?: { grpc?: { port: number } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodTemplate {
  metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
  spec: { containers: Container[]; volumes?: { name: string; configMap?: { name: string } }[] };
}
interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec?: {
    replicas?: number;
    clusterIP?: string;
    selector?: Record<string, string> & { matchLabels?: Record<string, string> };
    ports?: { name: string; port: number; targetPort: string | number }[];
    template?: PodTemplate;
    scaleTargetRef?: { kind: string; name: string };
    minReplicas?: number;
  };
  data?: Record<string, string>;
}

const kustomization = parse(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8')) as {
  resources: string[];
  secretGenerator: { name: string; envs: string[] }[];
  images: { name: string }[];
};
const objects: K8sObject[] = kustomization.resources.flatMap((file) =>
  parseAllDocuments(readFileSync(join(K8S, file), 'utf8')).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    return doc.toJS() as K8sObject;
  }),
);
const find = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);
const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
const services = objects.filter((o) => o.kind === 'Service');

/** The keys secrets.env.example declares (secrets.env itself is not in git). */
const secretKeys = new Set(
  readFileSync(join(K8S, 'secrets.env.example'), 'utf8')
    .split('\n')
    .filter((line) => /^[A-Z_][A-Z0-9_]*=/.test(line))
    .map((line) => line.slice(0, line.indexOf('='))),
);

function container(service: string): Container {
  const deployment = find('Deployment', service);
  if (!deployment) throw new Error(`deploy/k8s has no Deployment ${service}`);
  const c = deployment.spec!.template!.spec.containers.find((x) => x.name === service);
  if (!c) throw new Error(`Deployment ${service} has no container named ${service}`);
  return c;
}

function envOf(c: Container): Map<string, EnvEntry> {
  return new Map((c.env ?? []).map((e) => [e.name, e]));
}

/** A variable's built-in default, read from the service's declaration (the one loadConfig applies). */
function declaredDefault(service: string, variable: string): number {
  const spec = Object.values(serviceEnvSpecs[service]!).find((v) => v.name === variable) as EnvVar<number> | undefined;
  if (!spec) throw new Error(`${service} declares no ${variable}`);
  return spec.parse({});
}

/** `host:port` or `scheme://host:port[/path]` → host and port. */
function hostPort(address: string): { host: string; port: number } {
  const m = /^(?:[a-z]+:\/\/)?(?:dns:\/\/\/)?([^:/]+):(\d+)/.exec(address);
  if (!m) throw new Error(`not host:port: ${address}`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** kubectl is optional here (CI has none): its kustomize check is skipped without it. */
function hasKubectl(): boolean {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const selects = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** The pods a Service sends to, and the ports it offers. */
function serviceAt(address: string): { service: K8sObject; workload: K8sObject } {
  const { host, port } = hostPort(address);
  const service = find('Service', host);
  if (!service) throw new Error(`${address}: no Service ${host}`);
  if (!service.spec!.ports!.some((p) => p.port === port)) throw new Error(`${address}: Service ${host} has no port ${port}`);
  const workload = workloads.find((w) => selects(service.spec!.selector!, w.spec!.template!.metadata.labels));
  if (!workload) throw new Error(`${address}: Service ${host} selects no pods`);
  return { service, workload };
}

/**
 * The environment a pod of `service` starts with: literal values as written,
 * secrets as stand-ins of the right shape, the mounted config file at its path.
 */
function podEnv(service: string, configDir: string): Env {
  const c = container(service);
  const mounts = new Map((c.volumeMounts ?? []).map((m) => [m.name, m.mountPath]));
  const env: Env = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.secretKeyRef) env[e.name] = `secret-${e.valueFrom.secretKeyRef.key}-`.padEnd(64, 'x');
    else if (e.valueFrom?.fieldRef) env[e.name] = `${service}-7d9f-abcde`;
  }
  if (env.SWITCHYARD_CONFIG) {
    const mountPath = [...mounts.values()].find((p) => env.SWITCHYARD_CONFIG!.startsWith(`${p}/`));
    if (!mountPath) throw new Error(`${service}: SWITCHYARD_CONFIG ${env.SWITCHYARD_CONFIG} is on no mounted volume`);
    env.SWITCHYARD_CONFIG = join(configDir, env.SWITCHYARD_CONFIG.slice(mountPath.length + 1));
  }
  return env;
}

describe('deploy/k8s manifests', () => {
  const names = Object.keys(serviceEnvSpecs);

  it('list every manifest in kustomization.yaml, and every object has a kind, a name and the part-of label', () => {
    const onDisk = readdirSync(K8S).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).toEqual(onDisk.sort());
    for (const o of objects) {
      expect({ kind: o.kind, name: o.metadata?.name, partOf: o.metadata?.labels?.['app.kubernetes.io/part-of'] }).toEqual({
        kind: expect.any(String),
        name: expect.any(String),
        partOf: 'switchyard',
      });
    }
  });

  it.each(names)('%s: a Deployment of the one image, told which service it is', (service) => {
    const c = container(service);
    expect(c.image).toBe(kustomization.images[0]!.name);
    expect(c.command).toBeUndefined(); // the image's CMD runs dist/${SERVICE}/main.js
    expect(envOf(c).get('SERVICE')?.value).toBe(service);
  });

  it.each(names)("%s: gRPC and metrics ports are the service's declared defaults, named, and set explicitly", (service) => {
    const grpc = declaredDefault(service, 'GRPC_PORT');
    const metrics = declaredDefault(service, 'METRICS_PORT');
    const c = container(service);
    const env = envOf(c);
    expect(c.ports).toEqual(expect.arrayContaining([{ name: 'grpc', containerPort: grpc }, { name: 'metrics', containerPort: metrics }]));
    expect([env.get('GRPC_PORT')?.value, env.get('METRICS_PORT')?.value]).toEqual([String(grpc), String(metrics)]);
    const annotations = find('Deployment', service)!.spec!.template!.metadata.annotations;
    expect(annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(metrics), 'prometheus.io/path': '/metrics' });
  });

  it('every service has its own METRICS_PORT', () => {
    const ports = names.map((s) => declaredDefault(s, 'METRICS_PORT'));
    expect(new Set(ports).size).toBe(names.length);
  });

  it.each(names)('%s: readiness and liveness are grpc.health.v1 probes on its gRPC port', (service) => {
    const c = container(service);
    const grpc = declaredDefault(service, 'GRPC_PORT');
    expect([c.readinessProbe?.grpc?.port, c.livenessProbe?.grpc?.port]).toEqual([grpc, grpc]);
  });

  it.each(names)('%s: sets every variable the service requires or that defaults to a loopback address, and none it does not read', (service) => {
    const declared = Object.values(serviceEnvSpecs[service]!);
    const env = envOf(container(service));
    const mustSet = declared.filter((v) => v.defaultText === undefined || /127\.0\.0\.1|localhost/.test(v.defaultText)).map((v) => v.name);
    expect(mustSet.filter((name) => !env.has(name))).toEqual([]);
    // Read by the image (SERVICE), the OTel SDK (OTEL_*), the config file (${VAR}, env:VAR) or the service.
    const configText = readFileSync(join(ROOT, 'deploy/config/switchyard.yaml'), 'utf8');
    const configVars = new Set([...configText.matchAll(/\$\{([A-Z_][A-Z0-9_]*)|env:([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1] ?? m[2]!));
    const readsConfig = declared.some((v) => v.name === 'SWITCHYARD_CONFIG');
    const known = (name: string) =>
      name === 'SERVICE' || name.startsWith('OTEL_') || declared.some((v) => v.name === name) || (readsConfig && configVars.has(name));
    expect([...env.keys()].filter((name) => !known(name))).toEqual([]);
  });

  it.each(names)('%s: starts with this environment (its own loadConfig accepts it, config file included)', (service) => {
    const configDir = mkdtempSync(join(tmpdir(), 'switchyard-k8s-'));
    try {
      const configMap = find('ConfigMap', 'switchyard-config')!;
      for (const [file, text] of Object.entries(configMap.data!)) writeFileSync(join(configDir, file), text);
      expect(() => loaders[service]!(podEnv(service, configDir))).not.toThrow();
    } finally {
      rmSync(configDir, { recursive: true, force: true });
    }
  });

  it('the ConfigMap is deploy/config/switchyard.yaml verbatim, mounted where SWITCHYARD_CONFIG points', () => {
    const configMap = find('ConfigMap', 'switchyard-config');
    expect(configMap?.data?.['switchyard.yaml']).toBe(readFileSync(join(ROOT, 'deploy/config/switchyard.yaml'), 'utf8'));
    for (const w of workloads) {
      for (const v of w.spec!.template!.spec.volumes ?? []) {
        if (v.configMap) expect(find('ConfigMap', v.configMap.name)).toBeDefined();
      }
    }
  });

  it('the internal services and their callers share the internal token from the Secret; only the internal services get the operator token', () => {
    for (const service of names) {
      const env = envOf(container(service));
      const takes = (name: string) => Object.values(serviceEnvSpecs[service]!).some((v) => v.name === name);
      const internal = env.get('SWITCHYARD_INTERNAL_TOKEN')?.valueFrom?.secretKeyRef;
      if (takes('SWITCHYARD_INTERNAL_TOKEN')) expect({ service, ref: internal }).toEqual({ service, ref: { name: 'switchyard-secrets', key: 'SWITCHYARD_INTERNAL_TOKEN' } });
      const operator = env.get('SWITCHYARD_OPERATOR_TOKEN');
      if (service === 'router') expect(operator).toBeUndefined();
      else if (takes('SWITCHYARD_OPERATOR_TOKEN')) expect(operator?.valueFrom?.secretKeyRef).toMatchObject({ name: 'switchyard-secrets', optional: true });
    }
  });

  it('every secret reference names the generated Secret and a key secrets.env.example declares; every declared key is used', () => {
    const generated = new Set(kustomization.secretGenerator.map((s) => s.name));
    const refs = workloads.flatMap((w) => w.spec!.template!.spec.containers.flatMap((c) => (c.env ?? []).flatMap((e) => e.valueFrom?.secretKeyRef ?? [])));
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect({ name: generated.has(ref.name), key: ref.key, declared: secretKeys.has(ref.key) }).toEqual({ name: true, key: ref.key, declared: true });
    expect([...secretKeys].filter((key) => !refs.some((r) => r.key === key))).toEqual([]);
    expect(readFileSync(join(ROOT, '.gitignore'), 'utf8')).toContain('/deploy/k8s/secrets.env');
  });

  it("the router's peers are headless Services (DNS names every ready pod, so round_robin balances per call) on their gRPC ports", () => {
    const env = envOf(container('router'));
    for (const [variable, peer] of Object.entries(PEERS)) {
      const { service, workload } = serviceAt(env.get(variable)!.value!);
      expect({ variable, workload: workload.metadata.name, clusterIP: service.spec!.clusterIP, port: hostPort(env.get(variable)!.value!).port }).toEqual({
        variable,
        workload: peer,
        clusterIP: 'None',
        port: declaredDefault(peer, 'GRPC_PORT'),
      });
    }
    const jobsRouter = serviceAt(envOf(container('jobs')).get('ROUTER_ADDR')!.value!);
    expect({ workload: jobsRouter.workload.metadata.name, clusterIP: jobsRouter.service.spec!.clusterIP }).toEqual({ workload: 'router', clusterIP: 'None' });
  });

  it('every other address a pod is given (NATS, Redis, OTLP, simulator) is a Service in the manifests that selects pods and has that port', () => {
    for (const service of names) {
      for (const e of container(service).env ?? []) {
        if (/^(NATS_URL|REDIS_URL|OTEL_EXPORTER_OTLP_ENDPOINT|SIMULATOR_URL)$/.test(e.name)) expect(() => serviceAt(e.value!)).not.toThrow();
      }
    }
  });

  it("every Service and workload selector matches its pods' labels, and every named targetPort exists on them", () => {
    for (const w of workloads) expect(selects(w.spec!.selector!.matchLabels!, w.spec!.template!.metadata.labels)).toBe(true);
    for (const s of services) {
      const pods = workloads.filter((w) => selects(s.spec!.selector!, w.spec!.template!.metadata.labels));
      expect({ service: s.metadata.name, pods: pods.length }).toEqual({ service: s.metadata.name, pods: 1 });
      const portNames = pods[0]!.spec!.template!.spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.name));
      for (const p of s.spec!.ports!) expect({ service: s.metadata.name, targetPort: p.targetPort, found: portNames.includes(String(p.targetPort)) }).toEqual({ service: s.metadata.name, targetPort: p.targetPort, found: true });
    }
  });

  it('each service is scaled by a HorizontalPodAutoscaler, and its Deployment leaves the replica count to it', () => {
    for (const service of names) {
      const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler' && o.spec?.scaleTargetRef?.name === service);
      expect({ service, kind: hpa?.spec?.scaleTargetRef?.kind, min: (hpa?.spec?.minReplicas ?? 0) >= 2 }).toEqual({ service, kind: 'Deployment', min: true });
      expect(find('Deployment', service)!.spec!.replicas).toBeUndefined();
    }
  });

  (hasKubectl() ? it : it.skip)('kubectl kustomize builds them once secrets.env exists, the Secret renamed everywhere it is referenced', () => {
    const dir = mkdtempSync(join(tmpdir(), 'switchyard-kustomize-'));
    try {
      cpSync(K8S, dir, { recursive: true });
      writeFileSync(join(dir, 'secrets.env'), readFileSync(join(K8S, 'secrets.env.example')));
      const built = parseAllDocuments(execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' })).map((d) => d.toJS() as K8sObject);
      const secret = built.find((o) => o.kind === 'Secret')!;
      expect(secret.metadata.name).toMatch(/^switchyard-secrets-/);
      const refs = built.flatMap((o) => o.spec?.template?.spec.containers.flatMap((c) => (c.env ?? []).flatMap((e) => e.valueFrom?.secretKeyRef?.name ?? [])) ?? []);
      expect(new Set(refs)).toEqual(new Set([secret.metadata.name]));
      expect(built.length).toBe(objects.length + 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy/compose.yaml', () => {
  const compose = parse(readFileSync(join(ROOT, 'deploy/compose.yaml'), 'utf8'), { merge: true }) as {
    services: Record<string, { environment?: Record<string, string>; command?: string[] }>;
  };

  it.each(Object.keys(serviceEnvSpecs))("%s: its own GRPC_PORT and METRICS_PORT, the service's declared defaults", (service) => {
    const env = compose.services[service]?.environment ?? {};
    expect([env.GRPC_PORT, env.METRICS_PORT]).toEqual([String(declaredDefault(service, 'GRPC_PORT')), String(declaredDefault(service, 'METRICS_PORT'))]);
  });

  it('the simulator listens on every interface of its container, so the services can reach it', () => {
    const command = compose.services.simulator!.command!;
    expect(command[command.indexOf('--host') + 1]).toBe('0.0.0.0');
  });
});

describe('deploy/prometheus/prometheus.k8s.yml', () => {
  it("keeps the pods' port named metrics and labels them as the alert rules expect (job switchyard-<service>, service)", () => {
    const config = parse(readFileSync(join(ROOT, 'deploy/prometheus/prometheus.k8s.yml'), 'utf8')) as {
      rule_files: string[];
      scrape_configs: { relabel_configs: { source_labels?: string[]; regex?: string; action?: string; target_label?: string; replacement?: string }[] }[];
    };
    const relabel = config.scrape_configs[0]!.relabel_configs;
    expect(config.rule_files).toEqual(['alerts.yaml']);
    const keep = relabel.find((r) => r.action === 'keep')!;
    expect(keep.regex).toBe('switchyard;true;metrics');
    // What the kept targets are: the annotated pods' container port named `metrics`.
    for (const service of Object.keys(serviceEnvSpecs)) {
      const template = find('Deployment', service)!.spec!.template!;
      const values = { part: template.metadata.labels['app.kubernetes.io/part-of'], scrape: template.metadata.annotations?.['prometheus.io/scrape'] };
      expect(`${values.part};${values.scrape};metrics`).toBe(keep.regex);
    }
    expect(relabel.find((r) => r.target_label === 'job')).toMatchObject({ source_labels: ['__meta_kubernetes_pod_label_app_kubernetes_io_name'], replacement: 'switchyard-$1' });
    expect(relabel.find((r) => r.target_label === 'service')).toMatchObject({ source_labels: ['__meta_kubernetes_pod_label_app_kubernetes_io_name'] });
  });
});
