export function JobsPage() { return <section><h1>Jobs</h1></section>; }
export function JobPage({ id }: { id: string }) { return <section><h1>Job {id}</h1></section>; }
